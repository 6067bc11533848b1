package gateway

import (
	"math"
	"sync/atomic"
	"time"
)

// Pick-time histogram bounds: log-spaced buckets 5 % wide from 10 µs to
// about 100 s, so a quantile read from it is within 2.5 % of the true one.
const (
	pickHistMin    = 10 * time.Microsecond
	pickHistGrowth = 1.05
	pickHistSize   = 332 // ceil(log(1e7)/log(1.05)) + 1
)

// pickHist counts pick times in log-spaced buckets, lock-free. Bucket 0
// holds everything up to pickHistMin; the last, everything above.
type pickHist struct {
	counts [pickHistSize]atomic.Uint64
}

func pickBucket(d time.Duration) int {
	if d <= pickHistMin {
		return 0
	}
	i := 1 + int(math.Log(float64(d)/float64(pickHistMin))/math.Log(pickHistGrowth))
	return min(i, pickHistSize-1)
}

func (h *pickHist) observe(d time.Duration) { h.counts[pickBucket(d)].Add(1) }

func (h *pickHist) snapshot() PickTimes {
	var p PickTimes
	for i := range h.counts {
		p.counts[i] = h.counts[i].Load()
	}
	return p
}

// PickTimes is a histogram of the time the gateway waited for pickers'
// decisions, each from the request headers sent to the destination
// received (TLS record work included), in buckets 5 % wide.
type PickTimes struct {
	counts [pickHistSize]uint64
}

// Count is the number of picks recorded.
func (p PickTimes) Count() uint64 {
	var n uint64
	for _, c := range p.counts {
		n += c
	}
	return n
}

// Since is the picks recorded after earlier was taken.
func (p PickTimes) Since(earlier PickTimes) PickTimes {
	var out PickTimes
	for i, c := range p.counts {
		out.counts[i] = c - min(c, earlier.counts[i])
	}
	return out
}

// Quantile returns the q-quantile (0 < q ≤ 1), the geometric middle of
// its bucket; 0 when nothing was recorded.
func (p PickTimes) Quantile(q float64) time.Duration {
	n := p.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range p.counts {
		seen += c
		if seen >= rank {
			return bucketMiddle(i)
		}
	}
	return bucketMiddle(pickHistSize - 1)
}

func bucketMiddle(i int) time.Duration {
	if i == 0 {
		return pickHistMin
	}
	lo := float64(pickHistMin) * math.Pow(pickHistGrowth, float64(i-1))
	return time.Duration(lo * math.Sqrt(pickHistGrowth))
}
