package scoring

import (
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
)

// TestViewPathMatchesScore: the per-view fast paths (cached static
// scores, scoreView) give what each scorer's Score gives.
func TestViewPathMatchesScore(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: t0.Add(time.Second)}
	e := eps(50, func(i int, e *store.Endpoint) {
		e.Pod.ModelServer.WaitingRequests = float64(i % 6)
		e.Pod.ModelServer.KvCacheUsage = ptr(float64(i%9) / 9)
		e.GPUs[0].MemoryFreeBytes = uint64(i) << 30
		e.GPUs[0].SmActive = ptr(float64(i%4) / 4)
		e.GPUs[0].ThrottleReasons = uint64(i%3) * 0x20
		if i%7 == 0 {
			e.Pod.ModelServer.KvCacheUsage = nil
		}
	})
	v := view(e)
	p := newDefault(t, 1, clk.now)
	for i := range 40 {
		p.Tracker().Picked(e[i*3%50].Address)
		p.Observe(e[i*7%50].Address, time.Duration(100+i)*time.Millisecond, time.Duration(10+i%5)*time.Millisecond)
	}
	vs := p.state(v)
	idx := []int32{3, 4, 9, 10, 17, 21, 28, 35, 42, 49}
	cand := make([]*store.Endpoint, len(idx))
	for i, j := range idx {
		cand[i] = e[j]
	}
	s := &scratch{}
	s.grow(len(idx), len(p.scorers))
	s.score(&Request{}, vs, idx, cand, p.scorers, true)
	for j, w := range p.scorers {
		want := score(w.Scorer, &Request{}, cand)
		for i := range want {
			want[i] = clamp01(want[i])
		}
		if got := s.per[j][:len(idx)]; !near(got, want) {
			t.Errorf("%s: view path %v, Score %v", w.Scorer.Name(), got, want)
		}
	}
}
