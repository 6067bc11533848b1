package scoring

import (
	"fmt"
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

// withXids is withXid with a whole Xid list, on the given node.
func withXids(e *store.Endpoint, node string, sample time.Time, xids ...*telemetryv1.XidCount) *store.Endpoint {
	c := withXid(e, 0, 0, sample)
	c.Node = node
	c.GPUs[0].Health.XidErrors = xids
	return c
}

// A GPU's Xid history belongs to the node that reports it: another node's
// report of the same UUID (a copied UUID, simulated GPUs, or an agent
// lying) neither resets its baseline nor makes an unchanged count look new.
func TestHealthFilterXidHistoryPerNode(t *testing.T) {
	t.Parallel()
	h := NewHealthFilter(nil, 0)
	victim, other := ep(0), ep(1)
	s := func(k int) time.Time { return t0.Add(time.Duration(k) * time.Second) }
	steps := []struct {
		node    string
		count   uint64
		sample  int
		healthy bool
	}{
		{"node-a", 3, 0, true},  // node-a's baseline: 3
		{"node-b", 0, 1, true},  // node-b's GPU of the same UUID: its own baseline
		{"node-a", 3, 2, true},  // unchanged on node-a: not new
		{"node-b", 1, 3, false}, // node-b's count grew: only node-b's pod is out
		{"node-a", 3, 4, true},  // node-a still unchanged
		{"node-a", 4, 5, false}, // and its own increase still counts
	}
	for i, st := range steps {
		e := withXids(victim, st.node, s(st.sample), &telemetryv1.XidCount{Code: 79, Count: st.count})
		got := h.Filter(&Request{}, []*store.Endpoint{e, other}, nil)
		if healthy := len(got) == 2; healthy != st.healthy {
			t.Fatalf("step %d (%s count %d): healthy %v, want %v", i, st.node, st.count, healthy, st.healthy)
		}
	}
}

// Repeated entries of one code count once, at their largest count.
func TestHealthFilterDuplicateXids(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		before  []*telemetryv1.XidCount
		after   []*telemetryv1.XidCount
		healthy bool
	}{
		{"same duplicates again", []*telemetryv1.XidCount{{Code: 79, Count: 2}, {Code: 79, Count: 2}},
			[]*telemetryv1.XidCount{{Code: 79, Count: 2}, {Code: 79, Count: 2}}, true},
		{"largest of the duplicates counts", []*telemetryv1.XidCount{{Code: 79, Count: 5}, {Code: 79, Count: 1}},
			[]*telemetryv1.XidCount{{Code: 79, Count: 1}, {Code: 79, Count: 5}}, true},
		{"one duplicate grew", []*telemetryv1.XidCount{{Code: 79, Count: 5}, {Code: 79, Count: 1}},
			[]*telemetryv1.XidCount{{Code: 79, Count: 6}, {Code: 79, Count: 1}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := NewHealthFilter(nil, 0)
			other := ep(1)
			h.Filter(&Request{}, []*store.Endpoint{withXids(ep(0), "n", t0, tc.before...), other}, nil)
			got := h.Filter(&Request{}, []*store.Endpoint{withXids(ep(0), "n", t0.Add(time.Second), tc.after...), other}, nil)
			if healthy := len(got) == 2; healthy != tc.healthy {
				t.Fatalf("healthy %v, want %v", healthy, tc.healthy)
			}
		})
	}
}

// BenchmarkHealthFilterXidEntries checks one GPU whose report repeats one
// critical code n times: linear in n (it was quadratic).
func BenchmarkHealthFilterXidEntries(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			xids := make([]*telemetryv1.XidCount, n)
			for i := range xids {
				xids[i] = &telemetryv1.XidCount{Code: 79, Count: uint64(i)}
			}
			h := NewHealthFilter(nil, 0)
			other := ep(1)
			k := 0
			for b.Loop() {
				k++
				h.Filter(&Request{}, []*store.Endpoint{withXids(ep(0), "n", t0.Add(time.Duration(k)), xids...), other}, nil)
			}
		})
	}
}

// A report that has no reading of a GPU the pod holds (the agent's NVML
// sample missed its deadline) does not bring a lost GPU back: it stays out
// until a report reads it healthy again.
func TestHealthFilterLostGPUWithoutReading(t *testing.T) {
	t.Parallel()
	h := NewHealthFilter(nil, 0)
	other := ep(1)
	s := func(k int) time.Time { return t0.Add(time.Duration(k) * time.Second) }
	report := func(sample int, reading *telemetryv1.GPU) *store.Endpoint {
		e := ep(0)
		e.Pod.GpuUuids = []string{"GPU-0"}
		e.ReportSample = s(sample)
		e.GPUs = nil
		if reading != nil {
			e.GPUs = []*telemetryv1.GPU{reading}
		}
		return e
	}
	lost := &telemetryv1.GPU{Uuid: "GPU-0", Health: &telemetryv1.GPUHealth{Lost: true}}
	back := ep(0).GPUs[0]
	steps := []struct {
		name    string
		reading *telemetryv1.GPU
		healthy bool
	}{
		{"no reading before any: unknown, eligible", nil, true},
		{"healthy reading", back, true},
		{"lost", lost, false},
		{"no reading: still lost", nil, false},
		{"no reading again", nil, false},
		{"read healthy again", back, true},
		{"no reading after recovery", nil, true},
	}
	for i, st := range steps {
		got := h.Filter(&Request{}, []*store.Endpoint{report(i, st.reading), other}, nil)
		if healthy := len(got) == 2; healthy != st.healthy {
			t.Fatalf("step %d (%s): healthy %v, want %v", i, st.name, healthy, st.healthy)
		}
	}
}
