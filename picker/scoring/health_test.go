package scoring

import (
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"google.golang.org/protobuf/proto"
)

func withXid(e *store.Endpoint, code, count uint64, sample time.Time) *store.Endpoint {
	c := *e
	g := proto.CloneOf(e.GPUs[0])
	g.Health = &telemetryv1.GPUHealth{XidErrors: []*telemetryv1.XidCount{{Code: code, Count: count}}}
	c.GPUs = []*telemetryv1.GPU{g}
	c.ReportSample = sample
	return &c
}

func TestHealthFilterAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mut  func(e *store.Endpoint)
		keep bool
	}{
		{"healthy", func(*store.Endpoint) {}, true},
		{"stale report: unknown, not unhealthy", func(e *store.Endpoint) { e.Stale = true }, true},
		{"stale report of a lost gpu", func(e *store.Endpoint) { e.Stale, e.GPUs[0].Health.Lost = true, true }, false},
		{"stale report, scrape failed before it", func(e *store.Endpoint) { e.Stale, e.Pod.ModelServer.Stale = true, true }, true},
		{"model server scrape failed", func(e *store.Endpoint) { e.Pod.ModelServer.Stale = true }, false},
		{"gpu lost", func(e *store.Endpoint) { e.GPUs[0].Health.Lost = true }, false},
		{"one of two gpus lost", func(e *store.Endpoint) {
			e.GPUs = append(e.GPUs, &telemetryv1.GPU{Uuid: "GPU-x", Health: &telemetryv1.GPUHealth{Lost: true}})
		}, false},
		{"no model server reading", func(e *store.Endpoint) { e.Pod.ModelServer = nil }, true},
		{"xid at first sighting is a baseline", func(e *store.Endpoint) {
			e.GPUs[0].Health.XidErrors = []*telemetryv1.XidCount{{Code: 79, Count: 3}}
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := ep(0)
			tc.mut(e)
			bad := ep(1)
			bad.Pod.ModelServer.Stale = true
			got := NewHealthFilter(nil, 0).Filter(&Request{}, []*store.Endpoint{e, bad}, nil)
			if want := 0; tc.keep {
				want = 1
				if len(got) != want || got[0] != e {
					t.Fatalf("kept %v, want only the endpoint", got)
				}
			} else if len(got) != 2 {
				// Nothing healthy is left: the filter keeps everything.
				t.Fatalf("kept %d, want the all-unhealthy fallback (2)", len(got))
			}
		})
	}
}

// xidStep is one report of a GPU's count for one Xid code and whether the
// endpoint is healthy after it; sample is seconds after t0.
type xidStep struct {
	code, count uint64
	sample      int
	healthy     bool
}

func TestHealthFilterXidIncrease(t *testing.T) {
	t.Parallel()
	base := ep(0)
	other := ep(1)
	s := func(k int) time.Time { return t0.Add(time.Duration(k) * time.Second) }
	tests := []struct {
		name  string
		hold  time.Duration
		steps []xidStep
	}{
		{name: "critical increase, no hold", steps: []xidStep{{79, 1, 0, true}, {79, 1, 1, true}, {79, 2, 2, false}, {79, 2, 2, false}, {79, 2, 3, true}}},
		{name: "non-critical increase", steps: []xidStep{{13, 1, 0, true}, {13, 5, 1, true}}},
		{name: "new code appears", steps: []xidStep{{48, 1, 0, true}, {48, 1, 1, true}}},
		{name: "first critical xid of a clean gpu", steps: []xidStep{{13, 0, 0, true}, {79, 1, 1, false}, {79, 1, 2, true}}},
		{name: "held for 10s", hold: 10 * time.Second, steps: []xidStep{{94, 1, 0, true}, {94, 2, 1, false}, {94, 2, 5, false}, {94, 2, 11, false}, {94, 2, 12, true}}},
		{name: "agent restart resets the baseline", steps: []xidStep{{119, 5, 0, true}, {119, 1, 1, true}, {119, 2, 2, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := NewHealthFilter(nil, tc.hold)
			for i, st := range tc.steps {
				e := withXid(base, st.code, st.count, s(st.sample))
				got := h.Filter(&Request{}, []*store.Endpoint{e, other}, nil)
				if healthy := len(got) == 2; healthy != st.healthy {
					t.Fatalf("step %d (code %d count %d at %ds): healthy %v, want %v", i, st.code, st.count, st.sample, healthy, st.healthy)
				}
			}
		})
	}
}

func TestHealthFilterCustomCodes(t *testing.T) {
	t.Parallel()
	h := NewHealthFilter([]uint64{13}, 0)
	h.Filter(&Request{}, []*store.Endpoint{withXid(ep(0), 13, 1, t0)}, nil)
	got, degraded := h.filter([]*store.Endpoint{withXid(ep(0), 13, 2, t0.Add(time.Second))}, nil)
	if !degraded || len(got) != 1 {
		t.Fatalf("got %d endpoints, degraded %v; want the fallback", len(got), degraded)
	}
}
