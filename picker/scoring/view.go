package scoring

import (
	"sync"

	"github.com/headroom-dev/headroom/picker/store"
)

// viewState is what a pick needs from one immutable view, computed once
// per view instead of once per pick: the health verdicts, the scores that
// depend on an endpoint's own telemetry alone, the load readings, and the
// tracker's and speed scorer's entries for each endpoint. Every slice is
// indexed like view.Endpoints.
type viewState struct {
	v *store.View
	// healthy[f] holds filter f's verdicts when f is a *HealthFilter.
	healthy [][]bool
	// static[j] holds scorer j's scores when it is a staticScorer.
	static  [][]float64
	waiting []float64
	kv      []float64 // -1: unknown
	// stale marks endpoints without fresh telemetry: their readings are
	// frozen, and the picks counted since their last sample never stop
	// growing.
	stale   []bool
	sample  []int64
	flights []*flight
	speeds  []*speed
	// tracker and speed are what flights and speeds come from.
	tracker *Tracker
	speed   *SpeedScorer
	// rates are what wait was computed from; wait holds each endpoint's
	// expected-wait model (nil without that scorer).
	rates *Rates
	wait  []waitModel
	// pos maps an endpoint to its index, for custom filters' outputs
	// (built on first need).
	posOnce sync.Once
	pos     map[*store.Endpoint]int32
}

// staticScorer marks a scorer whose score for an endpoint depends on that
// endpoint's telemetry alone (not the request, the other candidates or
// any learned state), so it can be computed once per view.
type staticScorer interface{ static() }

func (KVCacheScorer) static()    {}
func (VRAMScorer) static()       {}
func (SMActivityScorer) static() {}
func (ThrottleScorer) static()   {}

// viewScorer is a scorer with a fast path over a viewState; it returns
// false, scoring nothing, when vs does not hold its state (a scorer built
// with another tracker than the picker's).
type viewScorer interface {
	scoreView(r *Request, vs *viewState, idx []int32, scores []float64) bool
}

// state returns v's viewState, building it on the first pick that uses v.
// The newest two are kept, so picks still holding the previous view while
// the next one comes in do not rebuild either.
func (p *Picker) state(v *store.View) *viewState {
	if vs := p.cached(v); vs != nil {
		return vs
	}
	p.viewMu.Lock()
	defer p.viewMu.Unlock()
	if vs := p.cached(v); vs != nil {
		return vs
	}
	if p.speed != nil {
		p.speed.Learn(v) // the servers' own latency histograms, once per view
	}
	p.rates.Learn(v)
	vs := p.buildState(v)
	p.prev.Store(p.view.Load())
	p.view.Store(vs)
	return vs
}

func (p *Picker) cached(v *store.View) *viewState {
	if vs := p.view.Load(); vs != nil && vs.v == v {
		return vs
	}
	if vs := p.prev.Load(); vs != nil && vs.v == v {
		return vs
	}
	return nil
}

func (p *Picker) buildState(v *store.View) *viewState {
	all := v.Endpoints
	n := len(all)
	vs := &viewState{
		v: v, healthy: make([][]bool, len(p.filters)), static: make([][]float64, len(p.scorers)),
		waiting: make([]float64, n), kv: make([]float64, n), sample: make([]int64, n), stale: make([]bool, n),
		flights: p.tracker.resolve(all), speeds: p.speed.resolve(all),
		tracker: p.tracker, speed: p.speed, rates: p.rates,
	}
	if p.wait != nil {
		vs.wait = p.wait.models(all, p.rates.resolve(all), make([]waitModel, 0, n))
	}
	for i, ep := range all {
		vs.waiting[i] = queueDepth(ep)
		vs.kv[i] = -1
		if kv, ok := kvUsage(ep); ok {
			vs.kv[i] = kv
		}
		vs.sample[i] = endpointSample(ep)
		vs.stale[i] = ep.Stale
	}
	for f, flt := range p.filters {
		if h, ok := flt.(*HealthFilter); ok {
			vs.healthy[f] = make([]bool, n)
			for i, ep := range all {
				vs.healthy[f][i] = h.healthy(ep)
			}
		}
	}
	for j, w := range p.scorers {
		if _, ok := w.Scorer.(staticScorer); ok {
			vs.static[j] = make([]float64, n)
			w.Scorer.Score(&Request{}, all, vs.static[j])
			for i, x := range vs.static[j] {
				vs.static[j][i] = clamp01(x)
			}
		}
	}
	return vs
}

// queueDepths fills out with each candidate's optimistic queue: reported
// waiting plus this replica's picks since the reading.
// A stale endpoint's depth is 0: not trusted, and kept out of the other
// candidates' scale (the picker then gives it the mean score).
func (vs *viewState) queueDepths(idx []int32, out []float64) {
	for i, j := range idx {
		if vs.stale[j] {
			out[i] = 0
			continue
		}
		out[i] = vs.waiting[j] + float64(vs.flights[j].since(vs.sample[j]))
	}
}

// index returns the view index of each endpoint of eps, which a custom
// filter returned: a walk when it kept the view's order, a map otherwise.
func (vs *viewState) index(eps []*store.Endpoint, idx []int32) []int32 {
	idx = idx[:0]
	all := vs.v.Endpoints
	j := 0
	for _, ep := range eps {
		for j < len(all) && all[j] != ep {
			j++
		}
		if j == len(all) {
			return vs.lookup(eps, idx[:0])
		}
		idx = append(idx, int32(j))
		j++
	}
	return idx
}

// lookup is index for reordered output; endpoints not in the view are
// dropped.
func (vs *viewState) lookup(eps []*store.Endpoint, idx []int32) []int32 {
	vs.posOnce.Do(func() {
		vs.pos = make(map[*store.Endpoint]int32, len(vs.v.Endpoints))
		for i, ep := range vs.v.Endpoints {
			vs.pos[ep] = int32(i)
		}
	})
	for _, ep := range eps {
		if i, ok := vs.pos[ep]; ok {
			idx = append(idx, i)
		}
	}
	return idx
}
