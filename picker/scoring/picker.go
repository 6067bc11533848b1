package scoring

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
)

// Weighted is a scorer and its weight in the sum.
type Weighted struct {
	Scorer Scorer
	Weight float64
}

// PickRecorder is a scorer that learns from the picks it helped make (the
// prefix affinity does).
type PickRecorder interface {
	RecordPick(r *Request, ep *store.Endpoint)
}

// Parts is what a Picker is made of; [New] builds them from a Config.
type Parts struct {
	Filters []Filter
	Scorers []Weighted
	// Saturation decides when sheddable requests are shed.
	Saturation Saturation
	// Tracker counts this replica's in-flight requests (nil: a new one).
	// The queue and in-flight scorers should share it.
	Tracker *Tracker
	// Speed learns from Observe (nil: a new one, unused unless a scorer).
	Speed *SpeedScorer
	// Rates are learnt for the expected-wait scorer (nil: a new one).
	Rates *Rates
	// Rand breaks ties (nil: randomly seeded). It is used under a lock.
	Rand rand.Source
}

// Picker picks endpoints for requests. It is safe for concurrent use.
type Picker struct {
	filters  []Filter
	scorers  []Weighted
	sat      Saturation
	tracker  *Tracker
	speed    *SpeedScorer
	rates    *Rates
	wait     *WaitScorer // the configured expected-wait scorer, if any
	fallback []Weighted  // ranks alone when every endpoint is unhealthy
	record   []PickRecorder

	randMu sync.Mutex
	rnd    rand.Source

	pool sync.Pool // *scratch

	viewMu     sync.Mutex
	view, prev atomic.Pointer[viewState] // of the newest two views picked from
}

// New builds the picker cfg describes; rnd breaks ties (nil: randomly
// seeded) and now is the in-flight tracker's clock (nil: time.Now).
func New(cfg Config, rnd rand.Source, now func() time.Time) (*Picker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := NewTracker(now)
	sp := NewSpeedScorer(cfg.SpeedAlpha)
	sp.now = tr.now
	rt := NewRates(cfg.SpeedAlpha)
	p := Parts{Saturation: cfg.Saturation, Tracker: tr, Speed: sp, Rates: rt, Rand: rnd}
	var prefix *PrefixScorer
	if cfg.Scorers[ScorerPrefixCache] > 0 {
		prefix = NewPrefixScorer(cfg.Prefix)
	}
	for _, f := range cfg.Filters {
		if f == FilterHealth {
			p.Filters = append(p.Filters, NewHealthFilter(cfg.Health.CriticalXids, cfg.Health.XidHold.Duration))
		}
	}
	for _, name := range ScorerNames() {
		w := cfg.Scorers[name]
		if w <= 0 {
			continue
		}
		var s Scorer
		switch name {
		case ScorerWait:
			s = NewWaitScorer(cfg.Wait, rt, tr, prefix)
		case ScorerQueue:
			s = QueueScorer{tr}
		case ScorerKVCache:
			s = KVCacheScorer{}
		case ScorerInFlight:
			s = InFlightScorer{tr}
		case ScorerPrefixCache:
			s = prefix
		case ScorerLoRA:
			s = LoRAScorer{}
		case ScorerSpeed:
			s = sp
		case ScorerVRAM:
			s = VRAMScorer{}
		case ScorerSMActivity:
			s = SMActivityScorer{}
		case ScorerThrottle:
			s = ThrottleScorer{Mask: cfg.ThrottleMask}
		default:
			return nil, fmt.Errorf("scoring: scorer %q has no constructor", name)
		}
		p.Scorers = append(p.Scorers, Weighted{s, w})
	}
	return NewPicker(p), nil
}

// NewPicker builds a picker from parts.
func NewPicker(p Parts) *Picker {
	if p.Tracker == nil {
		p.Tracker = NewTracker(nil)
	}
	if p.Speed == nil {
		p.Speed = NewSpeedScorer(0)
	}
	if p.Rates == nil {
		p.Rates = NewRates(0)
	}
	if p.Rand == nil {
		p.Rand = rand.NewPCG(rand.Uint64(), rand.Uint64())
	}
	pk := &Picker{
		filters: p.Filters, scorers: p.Scorers, sat: p.Saturation,
		tracker: p.Tracker, speed: p.Speed, rates: p.Rates, rnd: p.Rand,
	}
	for _, w := range p.Scorers {
		if r, ok := w.Scorer.(PickRecorder); ok {
			pk.record = append(pk.record, r)
		}
		if ws, ok := w.Scorer.(*WaitScorer); ok && ws.rates == p.Rates && ws.tracker == p.Tracker {
			pk.wait = ws
			// Without fresh telemetry the learnt rates still rank: the
			// last loads drained over their age, plus this replica's
			// picks.
			pk.fallback = append(pk.fallback, w)
		}
	}
	pk.fallback = append(pk.fallback, Weighted{InFlightScorer{p.Tracker}, 1})
	pk.pool.New = func() any { return new(scratch) }
	return pk
}

// Tracker is the picker's in-flight accounting.
func (p *Picker) Tracker() *Tracker { return p.tracker }

// Finished records that a request Pick sent to address has ended; call it
// once per successful Pick with its first endpoint, even when the gateway
// fell back to another.
func (p *Picker) Finished(address string) { p.tracker.Finished(address) }

// Observe learns an endpoint's time to first token and time per output
// token from one served request (zero: not measured).
func (p *Picker) Observe(address string, ttft, tpot time.Duration) {
	p.speed.Observe(address, ttft, tpot)
}

// ObserveResponse learns from one successful response of address: its
// speed (time to first token, per output token) and what the learnt
// rates take from it.
func (p *Picker) ObserveResponse(address string, o Response) {
	var tpot time.Duration
	if o.CompletionTokens > 1 && o.Total > o.FirstByte {
		tpot = (o.Total - o.FirstByte) / time.Duration(o.CompletionTokens-1)
	}
	p.speed.Observe(address, o.FirstByte, tpot)
	p.rates.Observe(address, o)
}

// Decision is a pick with what made it, for metrics and logs.
type Decision struct {
	// Endpoints are ranked best first: the destination, then fallbacks.
	Endpoints []*store.Endpoint
	// Scores are the Endpoints' weighted totals.
	Scores []float64
	// Contributions maps each scorer's name to weight × score for the
	// destination (label values bounded by the configured scorers).
	Contributions map[string]float64
	// Candidates is how many endpoints were eligible after filtering.
	Candidates int
	// Degraded is true when every endpoint was unhealthy, or none had
	// fresh telemetry, and the pick was ranked by in-flight requests
	// alone.
	Degraded bool
}

// Pick returns up to n (at least 1) endpoints of v for r, best first, and
// counts the first as in flight (see Finished). Ties break at random.
// Errors: ErrNoEndpoint, ErrShed.
func (p *Picker) Pick(r *Request, v *store.View, n int) ([]*store.Endpoint, error) {
	var d Decision
	err := p.decide(r, v, n, &d, false)
	return d.Endpoints, err
}

// Decide is Pick that also returns the scores and each scorer's
// contribution to the destination.
func (p *Picker) Decide(r *Request, v *store.View, n int) (Decision, error) {
	var d Decision
	err := p.decide(r, v, n, &d, true)
	return d, err
}

func (p *Picker) decide(r *Request, v *store.View, n int, d *Decision, explain bool) error {
	if v == nil || len(v.Endpoints) == 0 {
		return ErrNoEndpoint
	}
	vs := p.state(v)
	s := p.pool.Get().(*scratch)
	defer p.release(s)
	idx := s.subset(r.Subset, v.Endpoints)
	idx, d.Degraded = p.filter(r, vs, s, idx)
	d.Candidates = len(idx)
	if len(idx) == 0 {
		return ErrNoEndpoint
	}
	s.grow(len(idx), max(len(p.scorers), len(p.fallback), 1))
	cand := s.candidates(vs, idx)
	if s.countStale(cand) == len(cand) {
		// No candidate has fresh telemetry: rank by in-flight alone.
		d.Degraded = true
	}
	if r.Sheddable && !d.Degraded && p.sat.saturated(vs, idx, s.total) {
		return ErrShed
	}
	scorers := p.scorers
	if d.Degraded {
		scorers = p.fallback
	}
	s.score(r, vs, idx, cand, scorers, !d.Degraded)
	s.seed(p.draw())
	top := s.rank(max(n, 1))
	d.Endpoints = make([]*store.Endpoint, len(top))
	for i, c := range top {
		d.Endpoints[i] = cand[c]
	}
	if explain {
		d.Scores = make([]float64, len(top))
		for i, c := range top {
			d.Scores[i] = s.total[c]
		}
		d.Contributions = make(map[string]float64, len(scorers))
		for j, w := range scorers {
			d.Contributions[w.Scorer.Name()] = w.Weight * s.per[j][top[0]]
		}
	}
	dest := d.Endpoints[0]
	p.tracker.Picked(dest.Address)
	for _, rec := range p.record {
		rec.RecordPick(r, dest)
	}
	return nil
}

// filter runs the filters over the candidates' view indices; the bool is
// true when a health filter kept every endpoint because none was healthy.
func (p *Picker) filter(r *Request, vs *viewState, s *scratch, idx []int32) ([]int32, bool) {
	degraded := false
	for f, flt := range p.filters {
		if len(idx) == 0 {
			break
		}
		out := s.otherIdx(idx)
		if ok := vs.healthy[f]; ok != nil {
			for _, j := range idx {
				if ok[j] {
					out = append(out, j)
				}
			}
			if len(out) == 0 {
				out, degraded = append(out, idx...), true
			}
		} else {
			s.out = flt.Filter(r, s.candidates(vs, idx), s.out[:0])
			out = vs.index(s.out, out)
		}
		s.keepIdx(out)
		idx = out
	}
	return idx, degraded
}

// release drops the pick's endpoint pointers, so a pooled scratch does
// not keep an old view alive, and pools it.
func (p *Picker) release(s *scratch) {
	clear(s.cand)
	clear(s.out)
	p.pool.Put(s)
}

// draw takes two words from the shared source to seed one pick's ties.
func (p *Picker) draw() (uint64, uint64) {
	p.randMu.Lock()
	defer p.randMu.Unlock()
	return p.rnd.Uint64(), p.rnd.Uint64()
}
