package scoring

import (
	"testing"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// An endpoint the picker reads itself (no fresh report; store.Endpoint's
// Direct) is scored on its model server's load like a reported one, while
// its GPU readings, the last report's, are unknown: the GPU scorers give it
// the mean of the others.
func TestDirectReadingScoresLoadNotGPUs(t *testing.T) {
	t.Parallel()
	e := eps(3, func(i int, e *store.Endpoint) {
		e.GPUs[0].MemoryFreeBytes = []uint64{72 << 30, 8 << 30, 80 << 30}[i] // e2's is stale: all free
	})
	e[2].Direct = &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 9, SampleTimeUnixNano: uint64(t0.UnixNano())}
	cases := []struct {
		scorer string
		want   float64 // e2's score
	}{
		{ScorerVRAM, (0.9 + 0.1) / 2}, // the mean of e0 and e1, not 1
		{ScorerQueue, 0},              // the direct queue (9) is the longest, not unknown
	}
	for _, c := range cases {
		cfg := DefaultConfig()
		cfg.Scorers = map[string]float64{c.scorer: 1}
		p, err := New(cfg, seeded(1), nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.Decide(&Request{}, view(e), 3)
		if err != nil {
			t.Fatal(err)
		}
		if d.Degraded {
			t.Fatalf("%s: degraded with two fresh and one direct endpoint", c.scorer)
		}
		for i, x := range d.Endpoints {
			if x == e[2] && !near2(d.Scores[i], c.want, 1e-9) {
				t.Errorf("%s: the directly read endpoint scores %v, want %v", c.scorer, d.Scores[i], c.want)
			}
		}
	}
}
