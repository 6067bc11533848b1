package scoring

import (
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Learn feeds the speed averages from the model servers' own latency
// histograms: for each endpoint whose reported totals grew since the last
// view, the mean time to first token and per output token of the requests
// in between is one observation, as if the picker had timed them itself.
// It sees every request the server served, not only this replica's. It
// must not run concurrently with itself (the picker calls it under its
// view lock).
func (s *SpeedScorer) Learn(v *store.View) {
	if s.last == nil {
		s.last = make(map[string]*telemetryv1.LatencyTotals)
	}
	if !v.Built.IsZero() {
		s.mu.Lock()
		s.decay(v.Built)
		s.mu.Unlock()
	}
	for _, e := range v.Endpoints {
		cur := e.ModelServer().GetLatency()
		if cur == nil {
			continue
		}
		prev := s.last[e.Address]
		s.last[e.Address] = cur
		if prev == nil {
			continue // the first reading is a baseline
		}
		ttft := meanDelta(prev.GetTtftSecondsSum(), prev.GetTtftCount(), cur.GetTtftSecondsSum(), cur.GetTtftCount())
		tpot := meanDelta(prev.GetTpotSecondsSum(), prev.GetTpotCount(), cur.GetTpotSecondsSum(), cur.GetTpotCount())
		s.Observe(e.Address, ttft, tpot)
	}
	if len(s.last) > maxSpeedEntries {
		clear(s.last) // bounded; baselines are taken again
	}
}

// meanDelta is the mean of the observations between two cumulative
// readings; 0 when there were none, or the server restarted (totals fell).
func meanDelta(sum0, n0, sum1, n1 float64) time.Duration {
	if n1 <= n0 || sum1 < sum0 {
		return 0
	}
	return time.Duration((sum1 - sum0) / (n1 - n0) * float64(time.Second))
}
