package scoring

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Rates learns, per endpoint, what the expected-wait estimate needs from
// the server's own histograms (every request it served counts, whichever
// replica routed it) and from the responses this replica routes:
//
//   - service: the mean time a request holds a batch slot (vLLM's
//     request_inference_time: scheduled to last token), so a full batch
//     of B slots frees one every service/B seconds;
//   - prefill: the time from scheduling to the first token, as a fixed
//     part plus a part per prompt token (a least-squares fit over the
//     histograms' interval means of prefill time and prompt tokens);
//   - slots: the most requests seen running at once, known to be the
//     batch size once a reading showed requests waiting beside them.
//
// A server without the stage histograms (SGLang, TRT-LLM, Triton, older
// vLLM) gets its service time from routed responses (first byte to last)
// and its prefill from its time-to-first-token histogram in intervals
// when nothing waited. Nothing decays: these are properties of the
// server and its configuration, not of its momentary load (the wait
// estimate reads the load from the newest report), and an endpoint no
// one routes to keeps its true rates, so it is not mistaken for a fast
// one. A server that restarts (its totals fall) is learnt again.
type Rates struct {
	alpha float64

	mu sync.Mutex
	m  map[string]*rate
	// tokensPerByte converts a request body's length into prompt tokens,
	// learnt from responses' usage (float64 bits).
	tokensPerByte atomic.Uint64
}

// Default rate assumptions before anything is learnt.
const (
	defaultTokensPerByte = 0.25 // about four bytes of JSON prompt a token
	minSamplesForFit     = 8
)

// rate is one endpoint's learnt rates: the fields the pick path reads are
// float64 bits (0: unknown); the learner's state is guarded by Rates.mu.
type rate struct {
	service, prefillBase, prefillPerToken, slots atomic.Uint64
	// full is 1 once a reading showed requests waiting: slots is then the
	// batch size, not a lower bound.
	full atomic.Bool

	last     *telemetryv1.LatencyTotals
	lastAt   uint64 // last's sample time (unix nanos; 0: unknown)
	fit      prefillFit
	respSvc  float64 // service time from routed responses (EWMA)
	runMax   float64
	histSvc  bool // the server exports inference time
	histPref bool // the server exports prefill time
}

// reset forgets what was learnt of a server that restarted.
func (e *rate) reset() {
	for _, a := range []*atomic.Uint64{&e.service, &e.prefillBase, &e.prefillPerToken, &e.slots} {
		a.Store(0)
	}
	e.full.Store(false)
	e.fit, e.respSvc, e.runMax, e.histSvc, e.histPref = prefillFit{}, 0, 0, false, false
}

// prefillFit is an exponentially weighted least-squares fit of mean
// prefill time against mean prompt tokens.
type prefillFit struct {
	w, p, m, pp, pm float64
	n               int
}

func (f *prefillFit) add(p, m, alpha float64) {
	k := 1 - alpha
	f.w, f.p, f.m, f.pp, f.pm = k*f.w+1, k*f.p+p, k*f.m+m, k*f.pp+p*p, k*f.pm+p*m
	f.n++
}

// line returns the fit's fixed part and slope. With too few samples, or
// prompts too alike to tell a slope, the prefill is taken as
// proportional to the prompt (no fixed part), so that cached tokens still
// count; without prompt lengths it is the mean.
func (f *prefillFit) line() (base, perToken float64, ok bool) {
	if f.n == 0 || f.w <= 0 {
		return 0, 0, false
	}
	mp, mm := f.p/f.w, f.m/f.w
	varP := f.pp/f.w - mp*mp
	if f.n >= minSamplesForFit && varP > 0.01*mp*mp && varP > 0 {
		slope := (f.pm/f.w - mp*mm) / varP
		if slope > 0 && mm-slope*mp >= 0 {
			return mm - slope*mp, slope, true
		}
	}
	if mp > 0 {
		return 0, mm / mp, true
	}
	return mm, 0, true
}

// NewRates returns an empty learner whose averages weigh each new
// observation by alpha (0 < alpha ≤ 1).
func NewRates(alpha float64) *Rates {
	if !(alpha > 0 && alpha <= 1) {
		alpha = 0.2
	}
	r := &Rates{alpha: alpha, m: make(map[string]*rate)}
	r.tokensPerByte.Store(math.Float64bits(defaultTokensPerByte))
	return r
}

func load(a *atomic.Uint64) float64       { return math.Float64frombits(a.Load()) }
func store64(a *atomic.Uint64, v float64) { a.Store(math.Float64bits(v)) }

// get returns address's entry, created. r.mu is held.
func (r *Rates) get(address string) *rate {
	e := r.m[address]
	if e == nil {
		if len(r.m) >= maxSpeedEntries {
			for k := range r.m {
				delete(r.m, k)
				break
			}
		}
		e = &rate{}
		r.m[address] = e
	}
	return e
}

// resolve returns the entries of eps' addresses (see resolveEntries).
func (r *Rates) resolve(eps []*store.Endpoint) []*rate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return resolveEntries(r.m, eps, func(*rate) bool { return true })
}

// Learn reads one view: the batch size from each endpoint's running and
// waiting requests, and the service and prefill rates from the change of
// its histogram totals since the last view. Stale endpoints teach
// nothing. It must not run concurrently with itself (the picker calls it
// under its view lock).
func (r *Rates) Learn(v *store.View) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ep := range v.Endpoints {
		ms := ep.ModelServer()
		if ep.Stale || ms == nil || ms.GetStale() {
			continue
		}
		e := r.get(ep.Address)
		r.learnSlots(e, ms)
		if cur := ms.GetLatency(); cur != nil {
			at := ms.GetSampleTimeUnixNano()
			if at != 0 && at <= e.lastAt {
				// Not newer than what was learnt from: the same reading,
				// or an agent's report older than the picker's own read
				// of the server (picker/direct), whose totals would look
				// like a restart.
				continue
			}
			if prev := e.last; prev != nil && cur != prev {
				r.learnStages(e, prev, cur, ms.GetWaitingRequests() == 0)
			}
			e.last, e.lastAt = cur, at
		}
	}
}

func (r *Rates) learnSlots(e *rate, ms *telemetryv1.ModelServer) {
	run := nonNegative(ms.GetRunningRequests())
	if run > e.runMax {
		e.runMax = run
		store64(&e.slots, run)
	}
	if ms.GetWaitingRequests() > 0 && run > 0 {
		e.full.Store(true)
	}
}

// learnStages turns the change of an endpoint's totals into observations.
// idle says nothing waited at the newer reading: its TTFTs were prefills.
func (r *Rates) learnStages(e *rate, prev, cur *telemetryv1.LatencyTotals, idle bool) {
	if cur.GetInferenceCount() < prev.GetInferenceCount() || cur.GetTtftCount() < prev.GetTtftCount() {
		e.reset() // restarted: learn it again
		return
	}
	if n := cur.GetInferenceCount() - prev.GetInferenceCount(); n > 0 {
		if d := (cur.GetInferenceSecondsSum() - prev.GetInferenceSecondsSum()) / n; d > 0 {
			e.histSvc = true
			store64(&e.service, ewmaN(load(&e.service), d, r.alpha, n))
		}
	}
	var m float64 // mean prefill time of the interval's requests
	if n := cur.GetPrefillCount() - prev.GetPrefillCount(); n > 0 {
		m = (cur.GetPrefillSecondsSum() - prev.GetPrefillSecondsSum()) / n
		e.histPref = true
	} else if n := cur.GetTtftCount() - prev.GetTtftCount(); n > 0 && idle && !e.histPref {
		m = (cur.GetTtftSecondsSum() - prev.GetTtftSecondsSum()) / n
	}
	if !(m > 0) {
		return
	}
	p := 0.0 // mean prompt tokens, of the interval or the last known
	if n := cur.GetPromptTokensCount() - prev.GetPromptTokensCount(); n > 0 {
		p = (cur.GetPromptTokensSum() - prev.GetPromptTokensSum()) / n
	} else if e.fit.w > 0 {
		p = e.fit.p / e.fit.w
	}
	e.fit.add(max(p, 0), m, r.alpha/4)
	if base, per, ok := e.fit.line(); ok {
		store64(&e.prefillBase, base)
		store64(&e.prefillPerToken, per)
	}
}

// ewmaN folds n observations of mean x into avg (0: none yet).
func ewmaN(avg, x, alpha, n float64) float64 {
	if avg == 0 {
		return x
	}
	w := 1 - math.Pow(1-alpha, min(n, 50))
	return avg + w*(x-avg)
}

// Response is what a routed response tells about the endpoint that
// served it.
type Response struct {
	// FirstByte and Total are from the decision to the first and the
	// last byte of the response.
	FirstByte, Total time.Duration
	// PromptTokens and CompletionTokens are its usage (0: none).
	PromptTokens, CompletionTokens int
	// RequestBytes is the request body's length.
	RequestBytes int
}

// Observe learns from one successful response of address: the body's
// tokens per byte (from its usage), and, for a server whose histograms do
// not give it, its service time (first byte to last, plus the prefill).
func (r *Rates) Observe(address string, o Response) {
	if o.PromptTokens > 0 && o.RequestBytes > 0 {
		x := float64(o.PromptTokens) / float64(o.RequestBytes)
		if x > 0 && x <= 1 {
			old := load(&r.tokensPerByte)
			store64(&r.tokensPerByte, old+0.05*(x-old))
		}
	}
	if o.Total <= o.FirstByte || o.FirstByte <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.get(address)
	if e.histSvc {
		return
	}
	svc := (o.Total - o.FirstByte).Seconds() + load(&e.prefillBase) + load(&e.prefillPerToken)*float64(o.PromptTokens)
	e.respSvc = ewmaN(e.respSvc, svc, r.alpha, 1)
	store64(&e.service, e.respSvc)
}

// TokensPerByte is the current estimate of prompt tokens per body byte.
func (r *Rates) TokensPerByte() float64 { return load(&r.tokensPerByte) }

// poolRates are the medians of the candidates' learnt rates, the prior of
// an endpoint that has none yet (a fresh pod).
type poolRates struct {
	service, prefillBase, prefillPerToken, slots float64
}

// medians computes the pool's medians over the entries; buf is scratch.
func medians(entries []*rate, buf []float64) poolRates {
	med := func(get func(e *rate) (float64, bool)) float64 {
		buf = buf[:0]
		for _, e := range entries {
			if v, ok := get(e); ok {
				buf = append(buf, v)
			}
		}
		if len(buf) == 0 {
			return 0
		}
		slices.Sort(buf)
		return buf[len(buf)/2]
	}
	var p poolRates
	p.service = med(func(e *rate) (float64, bool) { v := load(&e.service); return v, v > 0 })
	p.prefillBase = med(func(e *rate) (float64, bool) {
		b, c := load(&e.prefillBase), load(&e.prefillPerToken)
		return b, b > 0 || c > 0
	})
	p.prefillPerToken = med(func(e *rate) (float64, bool) {
		b, c := load(&e.prefillBase), load(&e.prefillPerToken)
		return c, b > 0 || c > 0
	})
	p.slots = med(func(e *rate) (float64, bool) { return load(&e.slots), e.full.Load() })
	return p
}
