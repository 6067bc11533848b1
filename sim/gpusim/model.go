//go:build cgo

package gpusim

import (
	"math"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Load-model constants.
const (
	ambientC = 30.0 // idle temperature
	// riseC is the steady-state rise at full load: 30 + 52 = 82 °C.
	riseC = 52.0
	// thermalTau is the default time constant of the temperature lag.
	thermalTau = 20 * time.Second
	// throttleC is where the GPU starts thermal slowdown.
	throttleC = 85.0
	// reservedFraction of the framebuffer is held by the driver and
	// reported as "reserved" by memory info v2 (about 0.6% on H100).
	reservedFraction = 0.006
	// smActivityPerLoad and occupancyPerLoad scale load into GPM ratios:
	// "GPU utilisation" counts time any kernel ran, SM activity the share
	// of SMs busy, so activity runs a little below it.
	smActivityPerLoad = 0.9
	occupancyPerLoad  = 0.5
)

// gpu is the model state of one simulated GPU.
type gpu struct {
	dev *server.Device
	// handle is what the simulator hands out for this GPU (handles.go).
	handle device
	load   float64
	procs  []Process
	lost   bool
	// forced holds clocks-event bits set by ForceThrottle.
	forced uint64

	// last is when the model was last advanced.
	last time.Time
	temp float64
	// ambient is the idle temperature; a hot aisle or failed fan raises it.
	ambient float64
	// tau is the thermal time constant.
	tau time.Duration
	// smActiveSec and occupancySec integrate GPM ratios over time.
	smActiveSec, occupancySec float64

	// mem is the memory-health state (ECC counters, row remapping).
	mem memHealth
	// energyMJ integrates power over time: the counter NVML's total
	// energy consumption reads, in millijoules since the driver loaded.
	energyMJ   float64
	mig        []*migSlice
	procUtilTS uint64
}

// advance moves the model to now: temperature relaxes toward its
// steady state and the GPM integrals grow with the current load.
func (g *gpu) advance(now time.Time, p profile) {
	dt := now.Sub(g.last)
	if dt <= 0 {
		return
	}
	g.last = now
	target := g.ambient + riseC*g.load
	g.temp += (target - g.temp) * (1 - math.Exp(-float64(dt)/float64(g.tau)))
	sec := dt.Seconds()
	g.smActiveSec += smActivityPerLoad * g.load * sec
	g.occupancySec += occupancyPerLoad * g.load * sec
	g.energyMJ += g.powerWatts(p) * sec * 1000
	for _, m := range g.mig {
		m.smActiveSec += smActivityPerLoad * m.load * sec
	}
}

// memory returns total, reserved, used and free framebuffer bytes.
func (g *gpu) memory() nvml.Memory_v2 {
	total := g.dev.MemoryInfo.Total
	reserved := uint64(float64(total) * reservedFraction)
	var used uint64
	for _, p := range g.procs {
		used += p.VRAM
	}
	used = min(used, total-reserved)
	return nvml.Memory_v2{Total: total, Reserved: reserved, Used: used, Free: total - reserved - used}
}

// throttleReasons derives the clocks-event mask from load and temperature.
func (g *gpu) throttleReasons() uint64 {
	r := g.forced
	if g.load == 0 {
		r |= nvml.ClocksEventReasonGpuIdle
	}
	if g.load >= 0.95 {
		r |= nvml.ClocksEventReasonSwPowerCap
	}
	if g.temp >= throttleC {
		r |= nvml.ClocksThrottleReasonHwThermalSlowdown
	}
	return r
}

// smClock is the boost clock, cut by a fifth under thermal slowdown.
func (g *gpu) smClock(p profile) uint32 {
	if g.temp >= throttleC || g.forced != 0 {
		return p.smClockMHz * 4 / 5
	}
	return p.smClockMHz
}

// powerWatts grows linearly from idle to TDP with load.
func (g *gpu) powerWatts(p profile) float64 {
	return p.idleWatts + (p.tdpWatts-p.idleWatts)*g.load
}

// powerMilliwatts is powerWatts as NVML reports it.
func (g *gpu) powerMilliwatts(p profile) uint32 {
	return uint32(g.powerWatts(p) * 1000)
}

// processSMUtil splits the GPU's load over its processes by SM share, in
// percent.
func (g *gpu) processSMUtil() map[uint32]uint32 {
	var total float64
	for _, p := range g.procs {
		total += share(p)
	}
	out := make(map[uint32]uint32, len(g.procs))
	for _, p := range g.procs {
		out[p.PID] = uint32(math.Round(100 * g.load * share(p) / total))
	}
	return out
}

func share(p Process) float64 {
	if p.SMShare <= 0 {
		return 1
	}
	return p.SMShare
}
