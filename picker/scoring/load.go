package scoring

import (
	"math"

	"github.com/headroom-dev/headroom/picker/store"
)

// unknownScore is what a scorer gives an endpoint it knows nothing about:
// the middle, so missing telemetry neither attracts nor repels traffic.
const unknownScore = 0.5

// QueueScorer prefers shorter model-server queues: the reported waiting
// requests plus, with a Tracker, the requests this replica picked for the
// endpoint after its report was sampled; scored 1 − queue/max over the
// candidates (all 1 when every queue is empty).
type QueueScorer struct{ Tracker *Tracker }

// Name implements [Scorer].
func (QueueScorer) Name() string { return "queue" }

// Score implements [Scorer].
func (s QueueScorer) Score(_ *Request, eps []*store.Endpoint, scores []float64) {
	for i, ep := range eps {
		scores[i] = 0 // stale: not trusted, kept out of the others' scale
		if !ep.Stale {
			scores[i] = queueDepth(ep) + float64(s.Tracker.get(ep.Address, false).since(endpointSample(ep)))
		}
	}
	invertAgainstMax(scores[:len(eps)])
}

func (s QueueScorer) scoreView(_ *Request, vs *viewState, idx []int32, scores []float64) bool {
	if s.Tracker != vs.tracker {
		return false
	}
	vs.queueDepths(idx, scores)
	invertAgainstMax(scores[:len(idx)])
	return true
}

// queueDepth is the endpoint's reported waiting requests.
func queueDepth(ep *store.Endpoint) float64 {
	return nonNegative(ep.ModelServer().GetWaitingRequests())
}

// nonNegative maps negative and NaN readings to 0 and +Inf to the largest
// float, so sums and ratios stay finite.
func nonNegative(x float64) float64 {
	if !(x > 0) {
		return 0
	}
	return min(x, math.MaxFloat64)
}

// KVCacheScorer prefers KV-cache headroom: 1 − usage. An endpoint whose
// server does not report usage scores 0.5.
type KVCacheScorer struct{}

// Name implements [Scorer].
func (KVCacheScorer) Name() string { return "kv-cache" }

// Score implements [Scorer].
func (KVCacheScorer) Score(_ *Request, eps []*store.Endpoint, scores []float64) {
	for i, ep := range eps {
		if kv, ok := kvUsage(ep); ok {
			scores[i] = clamp01(1 - kv)
		} else {
			scores[i] = unknownScore
		}
	}
}

func kvUsage(ep *store.Endpoint) (float64, bool) {
	ms := ep.ModelServer()
	if ms == nil || ms.KvCacheUsage == nil || math.IsNaN(*ms.KvCacheUsage) {
		return 0, false
	}
	return *ms.KvCacheUsage, true
}

// Saturation says when the pool is too busy for sheddable requests: every
// eligible endpoint has a queue over QueueDepth or KV-cache use over
// KVCache.
type Saturation struct {
	// QueueDepth is the waiting requests (reported plus picked since the
	// report) over which an endpoint is saturated.
	QueueDepth float64 `json:"queueDepth"`
	// KVCache is the KV-cache use (0–1) over which an endpoint is
	// saturated.
	KVCache float64 `json:"kvCache"`
}

// saturated reports whether every candidate idx of vs is saturated;
// scratch holds len(idx) floats.
func (s Saturation) saturated(vs *viewState, idx []int32, scratch []float64) bool {
	if len(idx) == 0 {
		return false
	}
	vs.queueDepths(idx, scratch)
	fresh := false
	for i, j := range idx {
		if vs.stale[j] {
			continue // frozen readings say nothing about saturation
		}
		fresh = true
		if scratch[i] <= s.QueueDepth && !(vs.kv[j] > s.KVCache) {
			return false
		}
	}
	return fresh
}
