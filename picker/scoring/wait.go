package scoring

import (
	"math"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
)

// WaitConfig tunes the expected-wait scorer.
type WaitConfig struct {
	// Scale is how much longer an endpoint's estimate may be than the
	// best one's for half the score: the score is
	// scale / (scale + estimate − best).
	Scale Duration `json:"scale"`
	// DefaultService is the time a request holds a batch slot assumed
	// before any endpoint of the pool has taught one.
	DefaultService Duration `json:"defaultService"`
}

// WaitScorer estimates, for each endpoint, the request's time to first
// token if it were sent there now, and prefers the smallest:
//
//	TTFT ≈ wait for a batch slot + prefill of the prompt's uncached tokens
//
// With n requests there (the report's running and waiting, plus what this
// replica sent since the report was sampled) and B batch slots, a slot is
// free while n < B; otherwise the request is n − B + 1 places from one,
// and a full batch frees a slot every S/B seconds, S being the time a
// request holds a slot. The prefill is a fixed part plus a part per
// prompt token. S, B and the prefill are the endpoint's own, learnt by
// [Rates]; a fresh pod takes the pool's medians. The prompt's tokens are
// the body's bytes times the learnt tokens per byte, less those this
// replica recently sent to the endpoint with the same prefix (the prefix
// affinity, counted as time saved). A LoRA adapter the endpoint neither
// runs nor has room for costs half a service time (the wait for a
// running adapter's requests to finish).
//
// An endpoint whose report is stale keeps its learnt rates; its load is
// the last report's, drained at B/S requests a second over the report's
// age, plus this replica's picks since. So the scorer reads telemetry,
// but handles its staleness itself.
type WaitScorer struct {
	cfg     WaitConfig
	rates   *Rates
	tracker *Tracker
	prefix  *PrefixScorer // nil: no prefix affinity
}

// NewWaitScorer returns the scorer over the learnt rates and this
// replica's in-flight picks; prefix may be nil.
func NewWaitScorer(cfg WaitConfig, rates *Rates, tracker *Tracker, prefix *PrefixScorer) *WaitScorer {
	if cfg.Scale.Duration <= 0 {
		cfg.Scale.Duration = 100 * time.Millisecond
	}
	if cfg.DefaultService.Duration <= 0 {
		cfg.DefaultService.Duration = time.Second
	}
	return &WaitScorer{cfg: cfg, rates: rates, tracker: tracker, prefix: prefix}
}

// Name implements [Scorer].
func (*WaitScorer) Name() string { return ScorerWait }

// waitModel is what the estimate needs of one endpoint, fixed for a view.
type waitModel struct {
	load    float64 // reported running + waiting (0 when stale and drained)
	sample  int64   // when load was read (unix nanos)
	stale   bool
	slots   float64 // B ≥ 1
	perSlot float64 // S/B: seconds between two slots freed at full batch
	base    float64 // prefill, fixed part (s)
	perTok  float64 // prefill per prompt token (s)
}

// models computes the endpoints' wait models from the learnt rates
// (entries, indexed like eps) and the pool's medians.
func (s *WaitScorer) models(eps []*store.Endpoint, entries []*rate, out []waitModel) []waitModel {
	pool := medians(entries, make([]float64, 0, len(entries)))
	if pool.service <= 0 {
		pool.service = s.cfg.DefaultService.Seconds()
	}
	out = out[:0]
	for i, ep := range eps {
		e := entries[i]
		ms := ep.ModelServer()
		m := waitModel{
			load: nonNegative(ms.GetWaitingRequests()) + nonNegative(ms.GetRunningRequests()),
			// A failed scrape's values are as old as a stale report's.
			sample: endpointSample(ep), stale: ep.Stale || ms.GetStale(),
		}
		m.slots = load(&e.slots)
		if !e.full.Load() {
			// Never seen full: it has at least one slot more than it
			// ever ran, and the pool's size is the best guess.
			m.slots = max(m.slots+1, pool.slots)
		}
		m.slots = max(m.slots, 1)
		svc := load(&e.service)
		if svc <= 0 {
			svc = pool.service
		}
		m.perSlot = svc / m.slots
		m.base, m.perTok = load(&e.prefillBase), load(&e.prefillPerToken)
		if m.base <= 0 && m.perTok <= 0 {
			m.base, m.perTok = pool.prefillBase, pool.prefillPerToken
		}
		out = append(out, m)
	}
	return out
}

// estimate is the expected TTFT in seconds on an endpoint of model m
// holding inflight of this replica's requests picked after its sample,
// for a prompt of tokens uncached tokens, at now (unix nanos).
func (m *waitModel) estimate(since, tokens float64, now int64) float64 {
	n := m.load
	if m.stale && m.sample > 0 && now > m.sample {
		// The report is old: what it showed has been draining since.
		age := float64(now-m.sample) / 1e9
		n = max(n-age/m.perSlot, 0)
	}
	n += since
	wait := 0.0
	if n >= m.slots {
		wait = (n - m.slots + 1) * m.perSlot
	}
	return wait + m.base + m.perTok*max(tokens, 0)
}

// Score implements [Scorer] (the generic path: the rates are read and
// the pool's medians computed for eps).
func (s *WaitScorer) Score(r *Request, eps []*store.Endpoint, scores []float64) {
	s.estimates(r, eps, scores[:len(eps)])
	s.toScores(scores[:len(eps)])
}

// estimates fills est with r's estimated TTFT (seconds) on each of eps.
func (s *WaitScorer) estimates(r *Request, eps []*store.Endpoint, est []float64) {
	models := s.models(eps, s.rates.resolve(eps), nil)
	now := s.tracker.now().UnixNano()
	tokens, cached, tpb := s.tokens(r), s.cachedBytes(r), s.rates.TokensPerByte()
	for i, ep := range eps {
		m := &models[i]
		since := float64(s.tracker.get(ep.Address, false).since(m.sample))
		est[i] = m.estimate(since, tokens-cachedFor(cached, ep.Address)*tpb, now) + s.loraCost(r, ep, m)
	}
}

func (s *WaitScorer) scoreView(r *Request, vs *viewState, idx []int32, scores []float64) bool {
	if s.tracker != vs.tracker || s.rates != vs.rates || vs.wait == nil {
		return false
	}
	now := s.tracker.now().UnixNano()
	tokens := s.tokens(r)
	cached := s.cachedBytes(r)
	tpb := s.rates.TokensPerByte()
	for i, j := range idx {
		m := &vs.wait[j]
		ep := vs.v.Endpoints[j]
		uncached := tokens
		if len(cached) > 0 {
			uncached -= cachedFor(cached, ep.Address) * tpb
		}
		scores[i] = m.estimate(float64(vs.flights[j].since(m.sample)), uncached, now)
		if r.LoRA != "" {
			scores[i] += s.loraCost(r, ep, m)
		}
	}
	s.toScores(scores[:len(idx)])
	return true
}

// tokens is the request's prompt tokens, from the body's length.
func (s *WaitScorer) tokens(r *Request) float64 {
	return float64(max(r.PromptBytes, len(r.PromptPrefix))) * s.rates.TokensPerByte()
}

// cachedBytes returns the endpoints recently sent this prompt's leading
// blocks, with the bytes they cover.
func (s *WaitScorer) cachedBytes(r *Request) []prefixMatch {
	if s.prefix == nil {
		return nil
	}
	var buf [MaxPrefixBlocks]uint64
	hs := s.prefix.hashes(r, &buf)
	matches := s.prefix.match(hs, make([]prefixMatch, 0, prefixWays))
	for i := range matches {
		matches[i].blocks *= s.prefix.cfg.BlockSize // now bytes
	}
	return matches
}

func cachedFor(matches []prefixMatch, address string) float64 {
	for _, m := range matches {
		if m.addr == address {
			return float64(m.blocks)
		}
	}
	return 0
}

// loraCost is what an adapter the endpoint does not hold adds: nothing
// where it runs or waits, or there is room to load it; half a service
// time where every adapter slot is taken.
func (s *WaitScorer) loraCost(r *Request, ep *store.Endpoint, m *waitModel) float64 {
	if r.LoRA == "" || loraScore(r.LoRA, ep) > 0 {
		return 0
	}
	return m.perSlot * m.slots / 2
}

// toScores turns estimates (seconds) into scores: scale/(scale + est −
// best), 1 for the best.
func (s *WaitScorer) toScores(est []float64) {
	best := math.Inf(1)
	for _, e := range est {
		best = min(best, e)
	}
	scale := s.cfg.Scale.Seconds()
	for i, e := range est {
		est[i] = clamp01(scale / (scale + e - best))
	}
}

// Estimate returns the scorer's estimate of r's time to first token on
// each endpoint of eps (for logs, tests and tools).
func (s *WaitScorer) Estimate(r *Request, eps []*store.Endpoint) []time.Duration {
	est := make([]float64, len(eps))
	s.estimates(r, eps, est)
	out := make([]time.Duration, len(eps))
	for i, e := range est {
		out[i] = time.Duration(e * 1e9)
	}
	return out
}
