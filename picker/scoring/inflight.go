package scoring

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
)

// maxPickTimes bounds the pick times kept per endpoint; picks beyond it
// still count as in flight, and as recent.
const maxPickTimes = 4096

// Tracker counts the requests this replica has sent to each endpoint and
// not yet seen finish (optimistic accounting). The endpoint's report
// already holds the requests sent before it was sampled; those sent after
// are added to the reported queue, so a burst between two reports spreads
// instead of herding onto the endpoint that looked emptiest.
//
// An entry per address is kept while the address is in the newest view
// the picker used or has requests in flight, so memory is bounded by the
// pool plus the requests in flight.
type Tracker struct {
	now func() time.Time

	mu sync.RWMutex
	m  map[string]*flight
}

// flight is one address's in-flight requests. n and the since-cache are
// read without mu on the pick path.
type flight struct {
	n atomic.Int64
	// cacheAt is the sample time cacheN was counted for (0: none);
	// cacheN is the in-flight picks made after it, kept current by
	// Picked and Finished.
	cacheAt, cacheN atomic.Int64

	mu sync.Mutex
	// picks are the unix nanos of in-flight picks, oldest first. A finish
	// retires the oldest: the request sent first most likely ends first.
	picks []int64
	// untimed counts in-flight picks whose times were dropped.
	untimed int64
}

// NewTracker returns an empty tracker reading the clock now (nil:
// time.Now).
func NewTracker(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, m: make(map[string]*flight)}
}

// get returns address's entry, creating it when create is true.
func (t *Tracker) get(address string, create bool) *flight {
	if t == nil {
		return nil
	}
	t.mu.RLock()
	f := t.m[address]
	t.mu.RUnlock()
	if f != nil || !create {
		return f
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if f = t.m[address]; f == nil {
		f = &flight{}
		t.m[address] = f
	}
	return f
}

// Picked records one request sent to address.
func (t *Tracker) Picked(address string) {
	at := t.now().UnixNano()
	f := t.get(address, true)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.picks) == maxPickTimes {
		f.picks = f.picks[1:]
		f.untimed++
	}
	f.picks = append(f.picks, at)
	if c := f.cacheAt.Load(); c != 0 && at > c {
		f.cacheN.Add(1)
	}
	f.n.Add(1)
}

// Finished records that one request sent to address has ended (served,
// failed or cancelled). Call it exactly once per Picked.
func (t *Tracker) Finished(address string) {
	f := t.get(address, false)
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n.Load() <= 0 {
		return
	}
	recent := true // an untimed pick counts as recent
	if f.untimed > 0 {
		f.untimed--
	} else if len(f.picks) > 0 {
		recent = f.picks[0] > f.cacheAt.Load()
		f.picks = f.picks[1:]
	}
	if recent && f.cacheAt.Load() != 0 && f.cacheN.Load() > 0 {
		f.cacheN.Add(-1)
	}
	if f.n.Add(-1) == 0 {
		f.picks, f.untimed = nil, 0
		f.cacheN.Store(0)
	}
}

// InFlight is the number of requests sent to address and not finished.
func (t *Tracker) InFlight(address string) int {
	return int(t.get(address, false).inFlight())
}

// Since is the number of in-flight requests to address picked after
// sample (all of them when sample is zero).
func (t *Tracker) Since(address string, sample time.Time) int {
	return int(t.get(address, false).since(sampleNanos(sample)))
}

func (f *flight) inFlight() int64 {
	if f == nil {
		return 0
	}
	return f.n.Load()
}

// since counts the in-flight picks made after sample. It answers from the
// cache when sample is the one last asked for (each endpoint's report
// changes once an interval), taking no lock.
func (f *flight) since(sample int64) int64 {
	n := f.inFlight()
	if n <= 0 {
		return 0
	}
	if sample <= 0 {
		return n
	}
	if f.cacheAt.Load() == sample {
		return min(max(f.cacheN.Load(), 0), n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.untimed // dropped times belong to a burst: count them as recent
	for i := len(f.picks) - 1; i >= 0 && f.picks[i] > sample; i-- {
		k++
	}
	f.cacheN.Store(k)
	f.cacheAt.Store(sample)
	return min(k, n)
}

// resolve returns the entries of eps' addresses, creating missing ones,
// and drops idle entries of addresses no longer in the view.
func (t *Tracker) resolve(eps []*store.Endpoint) []*flight {
	t.mu.Lock()
	defer t.mu.Unlock()
	return resolveEntries(t.m, eps, func(f *flight) bool { return f.n.Load() == 0 })
}

// resolveEntries returns m's entries for eps' addresses, creating missing
// ones (so later updates land where the view reads), and once m has grown
// well past the view, drops the entries of other addresses that idle
// allows. The caller holds the lock guarding m.
func resolveEntries[T any](m map[string]*T, eps []*store.Endpoint, idle func(*T) bool) []*T {
	out := make([]*T, len(eps))
	for i, ep := range eps {
		e := m[ep.Address]
		if e == nil {
			e = new(T)
			m[ep.Address] = e
		}
		out[i] = e
	}
	if len(m) > 2*len(eps)+1024 {
		keep := make(map[string]bool, len(eps))
		for _, ep := range eps {
			keep[ep.Address] = true
		}
		for a, e := range m {
			if !keep[a] && idle(e) {
				delete(m, a)
			}
		}
	}
	return out
}

func sampleNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// endpointSample is when the endpoint's load was read: the model server's
// own sample time when the agent has it, else the node report's.
func endpointSample(ep *store.Endpoint) int64 {
	if ns := ep.ModelServer().GetSampleTimeUnixNano(); ns > 0 && ns < 1<<63 {
		return int64(ns)
	}
	return sampleNanos(ep.ReportSample)
}

// InFlightScorer prefers endpoints with fewer requests in flight from this
// replica: 1 − inflight/max over the candidates (all 1 when none is busy).
// It is also what decides alone when every endpoint is unhealthy.
type InFlightScorer struct{ Tracker *Tracker }

// Name implements [Scorer].
func (InFlightScorer) Name() string { return "in-flight" }

// Score implements [Scorer].
func (s InFlightScorer) Score(_ *Request, eps []*store.Endpoint, scores []float64) {
	for i, ep := range eps {
		scores[i] = float64(s.Tracker.get(ep.Address, false).inFlight())
	}
	invertAgainstMax(scores[:len(eps)])
}

func (s InFlightScorer) scoreView(_ *Request, vs *viewState, idx []int32, scores []float64) bool {
	if s.Tracker != vs.tracker {
		return false
	}
	for i, j := range idx {
		scores[i] = float64(vs.flights[j].inFlight())
	}
	invertAgainstMax(scores[:len(idx)])
	return true
}

// invertAgainstMax turns loads (finite, ≥ 0) into scores: 1 − load/max,
// all 1 when the max is 0.
func invertAgainstMax(v []float64) {
	hi := 0.0
	for _, x := range v {
		if x > hi {
			hi = x
		}
	}
	if hi <= 0 {
		for i := range v {
			v[i] = 1
		}
		return
	}
	inv := 1 / hi
	for i, x := range v {
		v[i] = 1 - x*inv
	}
}
