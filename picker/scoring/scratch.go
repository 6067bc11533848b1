package scoring

import (
	"math/rand/v2"
	"slices"

	"github.com/headroom-dev/headroom/picker/subset"

	"github.com/headroom-dev/headroom/picker/store"
)

// scratch holds one pick's buffers; a Picker pools them so a pick does
// not allocate in proportion to the endpoints.
type scratch struct {
	a, b  []int32           // candidates' view indices; filters ping-pong
	cand  []*store.Endpoint // the candidates
	out   []*store.Endpoint // a custom filter's output
	per   [][]float64       // per scorer, per candidate
	total []float64
	keys  []uint64 // random tie-breakers of the ranked candidates
	// stale counts the candidates without fresh telemetry, gpuUnknown
	// those without fresh GPU readings (countStale).
	stale, gpuUnknown int
	top               []int
	pcg               rand.PCG
}

// subset puts into s.a the view indices of the endpoints whose IP the
// gateway's subset hint names (all of them when there is no hint).
func (s *scratch) subset(hint *subset.Hosts, all []*store.Endpoint) []int32 {
	out := s.a[:0]
	for i, ep := range all {
		if hint.AllowsHost(ep.IP) {
			out = append(out, int32(i))
		}
	}
	s.a = out
	return out
}

// otherIdx returns the index buffer that does not back idx, emptied.
func (s *scratch) otherIdx(idx []int32) []int32 {
	if len(s.a) > 0 && len(idx) > 0 && &s.a[0] == &idx[0] {
		return s.b[:0]
	}
	return s.a[:0]
}

// keepIdx stores a filter's output back, since appending may have grown
// it.
func (s *scratch) keepIdx(out []int32) {
	if len(s.a) > 0 && len(out) > 0 && &s.a[0] == &out[0] {
		s.a = out
	} else {
		s.b = out
	}
}

// candidates fills s.cand with the endpoints at idx.
func (s *scratch) candidates(vs *viewState, idx []int32) []*store.Endpoint {
	s.cand = s.cand[:0]
	for _, j := range idx {
		s.cand = append(s.cand, vs.v.Endpoints[j])
	}
	return s.cand
}

// grow sizes the score buffers for n candidates and k scorers.
func (s *scratch) grow(n, k int) {
	s.total = slices.Grow(s.total[:0], n)[:n]
	s.keys = slices.Grow(s.keys[:0], n)[:n]
	for len(s.per) < k {
		s.per = append(s.per, nil)
	}
	for j := range k {
		s.per[j] = slices.Grow(s.per[j][:0], n)[:n]
	}
}

// score fills s.per and the weighted s.total; cached says whether the
// scorers are the picker's own, whose static scores vs holds. Only the
// generic path is clamped: the fast paths' scores are in 0..1 already.
func (s *scratch) score(r *Request, vs *viewState, idx []int32, cand []*store.Endpoint, scorers []Weighted, cached bool) {
	n := len(cand)
	total := s.total[:n]
	clear(total)
	for j, w := range scorers {
		per := s.per[j][:n]
		vsc, fast := w.Scorer.(viewScorer)
		switch {
		case fast && vsc.scoreView(r, vs, idx, per):
		case cached && vs.static[j] != nil:
			st := vs.static[j]
			for i, k := range idx {
				per[i] = st[k]
			}
		default:
			w.Scorer.Score(r, cand, per)
			for i, x := range per {
				per[i] = clamp01(x)
			}
		}
		switch telemetryOf(w.Scorer) {
		case modelServerTelemetry:
			if s.stale > 0 {
				meanForUnknown(per, cand, isStale)
			}
		case gpuTelemetry:
			if s.gpuUnknown > 0 {
				meanForUnknown(per, cand, (*store.Endpoint).GPUUnknown)
			}
		}
		wt := w.Weight
		for i, x := range per {
			total[i] += wt * x
		}
	}
}

// telemetry is what a scorer reads of the agents' reports.
type telemetry int

const (
	// ownTelemetry: the in-flight, prefix-cache and speed scorers learn
	// from what this replica sent and saw and keep their scores; the
	// expected-wait scorer drains a stale reading's load over its age
	// itself.
	ownTelemetry telemetry = iota
	// modelServerTelemetry: queue, KV cache and LoRA, which the picker
	// reads itself (picker/direct) while a node's report is stale.
	modelServerTelemetry
	// gpuTelemetry: VRAM, SM activity and throttling, which only the
	// agent reads; any scorer the picker does not know counts here.
	gpuTelemetry
)

// telemetryOf says what sc reads; the candidates for which that is not
// fresh get the mean score of the others (meanForUnknown).
func telemetryOf(sc Scorer) telemetry {
	switch sc.Name() {
	case ScorerInFlight, ScorerPrefixCache, ScorerSpeed, ScorerWait:
		return ownTelemetry
	case ScorerQueue, ScorerKVCache, ScorerLoRA:
		return modelServerTelemetry
	}
	return gpuTelemetry
}

func isStale(ep *store.Endpoint) bool { return ep.Stale }

// meanForUnknown gives the candidates whose telemetry is unknown the mean
// score of the others (neither favoured nor avoided), or 1 when no
// candidate's is known.
func meanForUnknown(per []float64, cand []*store.Endpoint, unknown func(*store.Endpoint) bool) {
	var sum float64
	var n int
	for i, ep := range cand {
		if !unknown(ep) {
			sum += per[i]
			n++
		}
	}
	mean := 1.0
	if n > 0 {
		mean = sum / float64(n)
	}
	for i, ep := range cand {
		if unknown(ep) {
			per[i] = mean
		}
	}
}

// countStale counts the candidates without fresh telemetry (returned)
// and those without fresh GPU readings.
func (s *scratch) countStale(cand []*store.Endpoint) int {
	s.stale, s.gpuUnknown = 0, 0
	for _, ep := range cand {
		if ep.Stale {
			s.stale++
		}
		if ep.GPUUnknown() {
			s.gpuUnknown++
		}
	}
	return s.stale
}

func (s *scratch) seed(a, b uint64) { s.pcg.Seed(a, b) }

// rank returns the indices of the best n candidates by total, best first,
// ties broken by a random key per candidate. Keys are drawn only for the
// candidates that reach the comparison, which keeps ties uniform: the
// others score strictly lower.
func (s *scratch) rank(n int) []int {
	top := s.top[:0]
	for i, t := range s.total {
		if len(top) == n && t < s.total[top[n-1]] {
			continue
		}
		k := s.pcg.Uint64()
		s.keys[i] = k
		if len(top) == n {
			last := top[n-1]
			if t == s.total[last] && k <= s.keys[last] {
				continue
			}
			top = top[:n-1]
		}
		j := len(top)
		for j > 0 && (t > s.total[top[j-1]] || (t == s.total[top[j-1]] && k > s.keys[top[j-1]])) {
			j--
		}
		top = slices.Insert(top, j, i)
	}
	s.top = top
	return top
}
