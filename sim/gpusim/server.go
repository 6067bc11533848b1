//go:build cgo

// Package gpusim simulates a GPU server for the agent, tests and the demo.
//
// It is built on NVIDIA's own go-nvml mock servers (pkg/nvml/mock/dgx*),
// whose identity and MIG functions it keeps, and fills the telemetry
// functions they leave nil from a small load model: each GPU has a load
// (0–1) and a set of processes holding VRAM; temperature follows load with a
// lag, power and clocks follow load and temperature, GPM SM activity is the
// time integral of load, and Xid errors and lost GPUs can be injected.
// Callers drive it with SetLoad, SetProcesses, InjectXid and LoseGPU.
package gpusim

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Options configures a simulated server.
type Options struct {
	// Profile is one of Profiles(); default "dgxh100".
	Profile string
	// Seed makes GPU UUIDs (and the Wander load pattern) reproducible.
	Seed uint64
	// Clock replaces time.Now, for tests that step time.
	Clock func() time.Time
	// ThermalTimeConstant is how fast temperature follows load (default
	// 20s, about a real heatsink's; the demo compresses it).
	ThermalTimeConstant time.Duration
}

// Process is a simulated compute process.
type Process struct {
	PID uint32
	// VRAM is the device memory it holds, in bytes.
	VRAM uint64
	// SMShare weights its part of the GPU's load (default 1).
	SMShare float64
	// MIGInstance is the GPU-instance ID it runs on, or -1 off MIG.
	MIGInstance int
}

// Server is a simulated multi-GPU server. It implements nvml.Interface.
type Server struct {
	*server.Server
	prof profile
	now  func() time.Time

	mu     sync.Mutex
	gpus   []*gpu
	events []*eventSet
	calls  uint64
}

// New builds a simulated server.
func New(opts Options) (*Server, error) {
	if opts.Profile == "" {
		opts.Profile = "dgxh100"
	}
	prof, err := lookupProfile(opts.Profile)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.ThermalTimeConstant <= 0 {
		opts.ThermalTimeConstant = thermalTau
	}
	s := &Server{Server: prof.newServer(), prof: prof, now: opts.Clock}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x6865616472))
	start := s.now()
	for _, d := range s.Devices {
		dev := d.(*server.Device)
		dev.UUID = seededUUID(rng)
		g := &gpu{dev: dev, handle: device{dev}, last: start, temp: ambientC, ambient: ambientC, tau: opts.ThermalTimeConstant}
		s.gpus = append(s.gpus, g)
		s.fillDevice(g)
	}
	s.fillServer()
	return s, nil
}

// seededUUID formats 16 random bytes as an NVML GPU UUID.
func seededUUID(rng *rand.Rand) string {
	a, b := rng.Uint64(), rng.Uint64()
	return fmt.Sprintf("GPU-%08x-%04x-%04x-%04x-%012x",
		a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

// NumGPUs returns the GPU count.
func (s *Server) NumGPUs() int { return len(s.gpus) }

// UUID returns the UUID of GPU i.
func (s *Server) UUID(i int) string { return s.gpus[i].dev.UUID }

// Name returns the product name of the GPUs.
func (s *Server) Name() string { return s.gpus[0].dev.Config.Name }

// MemoryTotal returns GPU i's framebuffer size in bytes.
func (s *Server) MemoryTotal(i int) uint64 { return s.gpus[i].dev.MemoryInfo.Total }

// SetLoad sets GPU i's load (clamped to 0–1) from now on.
func (s *Server) SetLoad(i int, load float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gpus[i]
	g.advance(s.now(), s.prof)
	g.load = min(max(load, 0), 1)
}

// Load returns GPU i's load.
func (s *Server) Load(i int) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gpus[i].load
}

// SetProcesses replaces GPU i's processes.
func (s *Server) SetProcesses(i int, procs []Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gpus[i].procs = append([]Process(nil), procs...)
}

// Processes returns a copy of GPU i's processes.
func (s *Server) Processes(i int) []Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Process(nil), s.gpus[i].procs...)
}

// LoseGPU makes GPU i fall off the bus: every call on it answers
// ERROR_GPU_IS_LOST, and Xid 79 is raised as the driver does.
func (s *Server) LoseGPU(i int) {
	s.mu.Lock()
	s.gpus[i].lost = true
	s.mu.Unlock()
	s.InjectXid(i, 79)
}

// RecoverGPU brings a lost GPU back (as after a reset).
func (s *Server) RecoverGPU(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gpus[i].lost = false
}

// SetAmbient sets GPU i's idle temperature (default 30 °C). Above about
// 33 °C a fully loaded GPU passes 85 °C and throttles its SM clock.
func (s *Server) SetAmbient(i int, celsius float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gpus[i]
	g.advance(s.now(), s.prof)
	g.ambient = celsius
}

// ThrottleHWSlowdown is NVML's hardware-slowdown clocks-event bit, for
// ForceThrottle.
const ThrottleHWSlowdown = nvml.ClocksThrottleReasonHwSlowdown

// ForceThrottle makes GPU i report the clocks-event bits in mask on top of
// those its load and temperature give, with its SM clock cut as under
// slowdown, until called again with 0: a GPU held back by a power brake or
// a failing fan whatever its load.
func (s *Server) ForceThrottle(i int, mask uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gpus[i].forced = mask
}

// withGPU runs fn on GPU i under the lock, after advancing its model to now;
// a lost GPU answers ERROR_GPU_IS_LOST without running fn.
func (s *Server) withGPU(g *gpu, fn func(g *gpu) nvml.Return) nvml.Return {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if g.lost {
		return nvml.ERROR_GPU_IS_LOST
	}
	g.advance(s.now(), s.prof)
	return fn(g)
}
