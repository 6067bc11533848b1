package scoring

import (
	"github.com/headroom-dev/headroom/picker/store"
)

// VRAMScorer prefers VRAM headroom: free/total summed over the pod's GPUs.
// It matters for servers that allocate on demand; vLLM preallocates most
// of the memory for its KV cache, so there it scores every pod alike. A
// pod without GPU readings scores 0.5.
type VRAMScorer struct{}

// Name implements [Scorer].
func (VRAMScorer) Name() string { return "vram" }

// Score implements [Scorer].
func (VRAMScorer) Score(_ *Request, eps []*store.Endpoint, scores []float64) {
	for i, ep := range eps {
		var free, total float64
		for _, g := range ep.GPUs {
			t := g.GetMemoryTotalBytes()
			if t == 0 {
				continue
			}
			total += float64(t)
			free += float64(min(g.GetMemoryFreeBytes(), t))
		}
		if total == 0 {
			scores[i] = unknownScore
		} else {
			scores[i] = clamp01(free / total)
		}
	}
}

// SMActivityScorer prefers idle streaming multiprocessors: 1 − the mean
// SM activity of the pod's GPUs, falling back to NVML's coarser
// utilization where SM activity is not read. A pod with neither scores
// 0.5.
type SMActivityScorer struct{}

// Name implements [Scorer].
func (SMActivityScorer) Name() string { return "sm-activity" }

// Score implements [Scorer].
func (SMActivityScorer) Score(_ *Request, eps []*store.Endpoint, scores []float64) {
	for i, ep := range eps {
		sum, n := 0.0, 0
		for _, g := range ep.GPUs {
			switch {
			case g == nil:
			case g.SmActive != nil:
				sum += clamp01(*g.SmActive)
				n++
			case g.Utilization != nil:
				sum += clamp01(*g.Utilization)
				n++
			}
		}
		if n == 0 {
			scores[i] = unknownScore
		} else {
			scores[i] = clamp01(1 - sum/float64(n))
		}
	}
}

// DefaultThrottleMask is NVML's clocks-event reasons that mean a GPU is
// held back by heat or power: SW power cap (0x4), HW slowdown (0x8), SW
// thermal (0x20), HW thermal (0x40) and HW power brake (0x80). Idle,
// application-clock, sync-boost and display reasons are not throttling.
const DefaultThrottleMask uint64 = 0x4 | 0x8 | 0x20 | 0x40 | 0x80

// ThrottleScorer gives 0 to a pod with any GPU throttled for a reason in
// Mask (zero: DefaultThrottleMask) and 1 otherwise.
type ThrottleScorer struct{ Mask uint64 }

// Name implements [Scorer].
func (ThrottleScorer) Name() string { return "throttle" }

// Score implements [Scorer].
func (s ThrottleScorer) Score(_ *Request, eps []*store.Endpoint, scores []float64) {
	mask := s.Mask
	if mask == 0 {
		mask = DefaultThrottleMask
	}
	for i, ep := range eps {
		scores[i] = 1
		for _, g := range ep.GPUs {
			if g.GetThrottleReasons()&mask != 0 {
				scores[i] = 0
				break
			}
		}
	}
}
