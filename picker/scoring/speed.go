package scoring

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// maxSpeedEntries bounds the endpoints whose speed is remembered.
const maxSpeedEntries = 1 << 16

// SpeedScorer prefers endpoints that have been fast: it keeps, per
// address, exponentially weighted moving averages of time to first token
// (TTFT) and time per output token (TPOT) learned from [SpeedScorer.Observe].
// Each average scores fastest/own over the candidates that have one, and
// an endpoint scores the mean of its two. An endpoint never observed
// scores the mean of the others (1 when none is known), so it is neither
// avoided nor favoured. An endpoint not observed for speedRefresh (one
// that looked slow during a burst, say, and was avoided since) has its
// averages pulled toward the pool's mean with a time constant of
// speedForget, so an old reading does not keep it out for good.
type SpeedScorer struct {
	alpha float64
	// now is the clock of observations (time.Now unless the picker's
	// clock is set).
	now func() time.Time

	mu sync.RWMutex
	m  map[string]*speed

	// last holds each endpoint's previous latency totals (Learn).
	last map[string]*telemetryv1.LatencyTotals
	// decayed is when the averages were last pulled toward the mean.
	decayed time.Time
}

// How an unrefreshed average is forgotten (see SpeedScorer).
const (
	speedRefresh = 10 * time.Second
	speedForget  = 30 * time.Second
)

// speed holds float64 seconds as bits (0: not observed); written under
// SpeedScorer.mu, read without it. at is when it was last observed.
type speed struct {
	ttft, tpot atomic.Uint64
	at         time.Time
}

func (sp *speed) get() (ttft, tpot float64) {
	if sp == nil {
		return 0, 0
	}
	return math.Float64frombits(sp.ttft.Load()), math.Float64frombits(sp.tpot.Load())
}

// NewSpeedScorer returns a scorer whose averages weigh each new
// observation by alpha (0 < alpha ≤ 1).
func NewSpeedScorer(alpha float64) *SpeedScorer {
	if !(alpha > 0 && alpha <= 1) {
		alpha = 0.2
	}
	return &SpeedScorer{alpha: alpha, now: time.Now, m: make(map[string]*speed)}
}

// Name implements [Scorer].
func (*SpeedScorer) Name() string { return "speed" }

// Observe learns one outcome of a request served by address; a zero or
// negative duration (a non-streamed response has no TPOT) is skipped.
func (s *SpeedScorer) Observe(address string, ttft, tpot time.Duration) {
	if ttft <= 0 && tpot <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.m[address]
	if sp == nil {
		if len(s.m) >= maxSpeedEntries {
			for k := range s.m { // drop an arbitrary entry
				delete(s.m, k)
				break
			}
		}
		sp = &speed{}
		s.m[address] = sp
	}
	t, p := sp.get()
	sp.ttft.Store(math.Float64bits(s.ewma(t, ttft)))
	sp.tpot.Store(math.Float64bits(s.ewma(p, tpot)))
	sp.at = s.now()
}

// decay pulls the averages of endpoints not observed for speedRefresh
// toward the mean of all, at most once a second. s.mu is held.
func (s *SpeedScorer) decay(now time.Time) {
	dt := now.Sub(s.decayed)
	if s.decayed.IsZero() || dt < time.Second {
		if s.decayed.IsZero() {
			s.decayed = now
		}
		return
	}
	s.decayed = now
	var sumT, sumP float64
	var nT, nP int
	for _, sp := range s.m {
		t, p := sp.get()
		if t > 0 {
			sumT, nT = sumT+t, nT+1
		}
		if p > 0 {
			sumP, nP = sumP+p, nP+1
		}
	}
	k := 1 - math.Exp(-dt.Seconds()/speedForget.Seconds())
	for _, sp := range s.m {
		if now.Sub(sp.at) < speedRefresh {
			continue
		}
		t, p := sp.get()
		if t > 0 && nT > 0 {
			sp.ttft.Store(math.Float64bits(t + k*(sumT/float64(nT)-t)))
		}
		if p > 0 && nP > 0 {
			sp.tpot.Store(math.Float64bits(p + k*(sumP/float64(nP)-p)))
		}
	}
}

func (s *SpeedScorer) ewma(avg float64, d time.Duration) float64 {
	switch {
	case d <= 0:
		return avg
	case avg == 0:
		return d.Seconds()
	default:
		return avg + s.alpha*(d.Seconds()-avg)
	}
}

// Speed returns address's averages (zero when not observed).
func (s *SpeedScorer) Speed(address string) (ttft, tpot time.Duration) {
	s.mu.RLock()
	t, p := s.m[address].get()
	s.mu.RUnlock()
	return time.Duration(t * 1e9), time.Duration(p * 1e9)
}

// Score implements [Scorer].
func (s *SpeedScorer) Score(_ *Request, eps []*store.Endpoint, scores []float64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	speedScores(len(eps), func(i int) *speed { return s.m[eps[i].Address] }, scores)
}

func (s *SpeedScorer) scoreView(_ *Request, vs *viewState, idx []int32, scores []float64) bool {
	if s != vs.speed {
		return false
	}
	speedScores(len(idx), func(i int) *speed { return vs.speeds[idx[i]] }, scores)
	return true
}

// resolve returns the entries of eps' addresses (see resolveEntries).
func (s *SpeedScorer) resolve(eps []*store.Endpoint) []*speed {
	s.mu.Lock()
	defer s.mu.Unlock()
	return resolveEntries(s.m, eps, func(*speed) bool { return true })
}

// speedScores scores n endpoints whose speed entries sp returns.
func speedScores(n int, sp func(i int) *speed, scores []float64) {
	scores = scores[:n]
	minTTFT, minTPOT := 0.0, 0.0
	for i := range n {
		t, p := sp(i).get()
		minTTFT, minTPOT = minPositive(minTTFT, t), minPositive(minTPOT, p)
	}
	if minTTFT == 0 && minTPOT == 0 {
		for i := range scores {
			scores[i] = 1
		}
		return
	}
	known, sum := 0, 0.0
	for i := range n {
		t, p := sp(i).get()
		scores[i] = -1
		if t > 0 || p > 0 {
			scores[i] = meanRatio(minTTFT, t, minTPOT, p)
			known++
			sum += scores[i]
		}
	}
	fill := sum / float64(known)
	for i := range scores {
		if scores[i] < 0 {
			scores[i] = fill
		}
	}
}

func minPositive(a, b float64) float64 {
	if a == 0 || (b > 0 && b < a) {
		return b
	}
	return a
}

// meanRatio averages best/own for the averages an endpoint has.
func meanRatio(bestTTFT, ttft, bestTPOT, tpot float64) float64 {
	sum, n := 0.0, 0
	if ttft > 0 {
		sum += clamp01(bestTTFT / ttft)
		n++
	}
	if tpot > 0 {
		sum += clamp01(bestTPOT / tpot)
		n++
	}
	if n == 0 {
		return 1
	}
	return sum / float64(n)
}
