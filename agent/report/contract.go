package report

import (
	"cmp"
	"math"
	"slices"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

// The report keeps the contract the picker checks (telemetryv1.Max*):
// lists are cut to their limits and an impossible model-server value is
// cleared, so no report the agent sends is refused or loses a pod section.
// The model-server source already leaves impossible values out and counts
// them (headroom_modelserver_values_dropped_total); this is the last guard
// for a snapshot filled some other way.

// capProcesses keeps the processes holding the most VRAM when a GPU has
// more than a report carries (NVML never lists that many on real GPUs).
func capProcesses(ps []snapshot.Process) []snapshot.Process {
	if len(ps) <= telemetryv1.MaxProcessesPerGPU {
		return ps
	}
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b snapshot.Process) int { return cmp.Compare(b.UsedMemory, a.UsedMemory) })
	return ps[:telemetryv1.MaxProcessesPerGPU]
}

// soundCount is v when it is a count (finite, not negative), else 0.
func soundCount(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

// soundRatio is v clamped to 0–1, or false when it is no ratio at all.
func soundRatio(v float64) (float64, bool) {
	if math.IsNaN(v) || v < 0 || v > 1.001 {
		return 0, false
	}
	return min(v, 1), true
}

func soundLatency(l *snapshot.LatencyTotals) bool {
	for _, v := range []float64{l.TTFTSum, l.TTFTCount, l.TPOTSum, l.TPOTCount, l.QueueSum, l.QueueCount,
		l.PrefillSum, l.PrefillCount, l.InferenceSum, l.InferenceCount, l.PromptTokensSum, l.PromptTokensCount} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return false
		}
	}
	return true
}

// adapterNames keeps the adapter names a report may carry, at most its
// limit; it returns names itself when nothing is cut.
func adapterNames(names []string) []string {
	ok := len(names) <= telemetryv1.MaxLoRAAdapters
	for _, n := range names {
		ok = ok && n != "" && len(n) <= telemetryv1.MaxLoRANameBytes
	}
	if ok {
		return names
	}
	var out []string
	for _, n := range names {
		if n != "" && len(n) <= telemetryv1.MaxLoRANameBytes && len(out) < telemetryv1.MaxLoRAAdapters {
			out = append(out, n)
		}
	}
	return out
}
