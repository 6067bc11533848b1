package scoring

import (
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// viewWithLatency is a view of endpoints a and b with the given totals.
func viewWithLatency(a, b *telemetryv1.LatencyTotals) *store.View {
	ep := func(addr string, l *telemetryv1.LatencyTotals) *store.Endpoint {
		return &store.Endpoint{Address: addr, Pod: &telemetryv1.Pod{ModelServer: &telemetryv1.ModelServer{Latency: l}}}
	}
	return &store.View{Endpoints: []*store.Endpoint{ep("10.0.0.1:8000", a), ep("10.0.0.2:8000", b)}}
}

func TestSpeedLearnsFromServerHistograms(t *testing.T) {
	s := NewSpeedScorer(1) // alpha 1: the newest observation is the average
	s.Learn(viewWithLatency(
		&telemetryv1.LatencyTotals{TtftSecondsSum: 10, TtftCount: 10, TpotSecondsSum: 5, TpotCount: 100},
		&telemetryv1.LatencyTotals{TtftSecondsSum: 1, TtftCount: 10, TpotSecondsSum: 1, TpotCount: 100}))
	v := viewWithLatency(
		// a: 10 more requests at 1 s to first token, 50 ms per token
		&telemetryv1.LatencyTotals{TtftSecondsSum: 20, TtftCount: 20, TpotSecondsSum: 10, TpotCount: 200},
		// b: 10 more at 0.1 s, 10 ms per token
		&telemetryv1.LatencyTotals{TtftSecondsSum: 2, TtftCount: 20, TpotSecondsSum: 2, TpotCount: 200})
	s.Learn(v)
	scores := make([]float64, 2)
	s.Score(&Request{}, v.Endpoints, scores)
	if !(scores[1] > scores[0]) || scores[1] != 1 {
		t.Fatalf("scores %v: want the faster server (b) at 1 and above a", scores)
	}
	a, _ := s.m["10.0.0.1:8000"].get()
	if a < 0.99 || a > 1.01 {
		t.Fatalf("a's learnt TTFT %v s, want 1 s", a)
	}
}

func TestSpeedLearnSkipsRestartsAndIdle(t *testing.T) {
	s := NewSpeedScorer(1)
	base := &telemetryv1.LatencyTotals{TtftSecondsSum: 10, TtftCount: 10}
	s.Learn(viewWithLatency(base, base))
	// a restarted (totals fell), b served nothing: no observation.
	s.Learn(viewWithLatency(&telemetryv1.LatencyTotals{TtftSecondsSum: 1, TtftCount: 1}, base))
	if len(s.m) != 0 {
		t.Fatalf("learnt %d endpoints from a restart and an idle server", len(s.m))
	}
}

// An endpoint that looked slow once and was not observed since is not
// kept out for good: its averages drift toward the pool's mean, while
// one observed recently keeps its own.
func TestSpeedForgetsUnrefreshed(t *testing.T) {
	clk := &fakeClock{t: t0}
	s := NewSpeedScorer(1)
	s.now = clk.now
	s.Observe("a", 5*time.Second, 0)        // looked slow in a burst
	s.Observe("b", 100*time.Millisecond, 0) // fast
	s.Observe("c", 100*time.Millisecond, 0) // fast, and seen again below
	s.Learn(&store.View{Built: clk.now()})  // starts the clock
	clk.add(time.Minute)
	s.Observe("c", 100*time.Millisecond, 0)
	s.Learn(&store.View{Built: clk.now()})
	a, _ := s.Speed("a")
	c, _ := s.Speed("c")
	if a > 2500*time.Millisecond {
		t.Fatalf("a's TTFT average still %v after a minute unobserved, want pulled toward the mean (1.73 s)", a)
	}
	if c != 100*time.Millisecond {
		t.Fatalf("c, observed just now, moved to %v", c)
	}
}
