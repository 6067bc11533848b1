//go:build cgo

package cluster

import (
	"math"
	"net/http"
	"sync/atomic"

	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/sim/modelsim"
)

// Server is one GPU's model server (one pod).
type Server struct {
	// Server is the in-process simulator; nil when a Backend started the
	// server.
	*modelsim.Server
	Name string
	Node *Node
	GPU  int
	Addr string
	// Class is the node's NodeSpec.Server: the modelsim profile or the
	// Backend's server class.
	Class string
	// Profile is the modelsim profile (zero with a Backend).
	Profile modelsim.Profile

	hook         *gpuLoad
	http         *http.Server
	done         chan struct{}
	stopExternal func()
	capacity     func(meanPrompt, meanOutput float64) float64
	slowdown     atomic.Value // float64
}

// Capacity is the server's completed requests per second at full load for
// the mean prompt and output lengths, counting its slowdown.
func (s *Server) Capacity(meanPrompt, meanOutput float64) float64 {
	return s.capacity(meanPrompt, meanOutput) / s.Slowdown()
}

// Slowdown is the server's current slowdown factor (1: nominal).
func (s *Server) Slowdown() float64 { return s.slowdown.Load().(float64) }

func (s *Server) setSlowdown(f float64) {
	if s.Server == nil {
		panic("cluster: only in-process modelsim servers can be slowed down")
	}
	s.slowdown.Store(f)
	s.Server.SetSlowdown(f)
}

// Throttle slows the server by factor (its GPU's clocks cut, as under
// thermal or power slowdown) and makes its simulated GPU report hardware
// slowdown; factor 1 clears it.
func (s *Server) Throttle(factor float64) {
	factor = math.Max(factor, 1)
	var mask uint64
	if factor > 1 {
		mask = gpusim.ThrottleHWSlowdown
	}
	s.Node.GPUs.ForceThrottle(s.GPU, mask)
	s.setSlowdown(factor)
}

// CoTenant puts a second compute process on the server's GPU that takes
// share (0–1) of its SMs and vram bytes: the server runs 1/(1−share) times
// slower, and the GPU shows the process and the extra SM activity. Share 0
// removes it.
func (s *Server) CoTenant(share float64, vram uint64) {
	share = math.Min(math.Max(share, 0), 0.9)
	procs := s.Node.GPUs.Processes(s.GPU)
	own := procs[:0:0]
	for _, p := range procs {
		if p.PID != coTenantPID(s) {
			own = append(own, p)
		}
	}
	if share > 0 {
		own = append(own, gpusim.Process{PID: coTenantPID(s), VRAM: vram, SMShare: share / (1 - share), MIGInstance: -1})
	}
	s.Node.GPUs.SetProcesses(s.GPU, own)
	s.hook.cotenant.Store(math.Float64bits(share))
	s.setSlowdown(1 / (1 - share))
}

// coTenantPID is a PID outside every pod's container, so the agent counts
// it as unattributed, as it would a job started outside Kubernetes.
func coTenantPID(s *Server) uint32 { return uint32(90000 + 100*s.Node.Index + s.GPU) }

func (s *Server) stop() {
	if s.stopExternal != nil {
		s.stopExternal()
		return
	}
	_ = s.http.Close()
	<-s.done
	<-s.done
}

// gpuLoad carries a model server's load to its simulated GPU, adding a
// co-tenant's share.
type gpuLoad struct {
	sim      *gpusim.Server
	gpu      int
	cotenant atomic.Uint64 // float64 bits
}

// SetLoad implements modelsim.GPU.
func (g *gpuLoad) SetLoad(busy float64) {
	ct := math.Float64frombits(g.cotenant.Load())
	g.sim.SetLoad(g.gpu, math.Min(1, ct+busy*(1-ct)))
}
