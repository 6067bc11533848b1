package loadgen

import (
	"math"
	"slices"
	"time"
)

// Quantiles are the p50, p90 and p99 of a set of durations.
type Quantiles struct{ P50, P90, P99 time.Duration }

// Summary is a load run's outcome.
type Summary struct {
	Requests, OK, Failed int
	// Throughput is completed requests per second and TokensPerSecond
	// their output tokens per second, both over the span from the first
	// request's start to the last one's end.
	Throughput, TokensPerSecond float64
	TTFT, Latency               Quantiles
	// PerServer counts successful requests by the server that answered.
	PerServer map[string]int
	// Errors counts failures by message (at most the first 10 kinds).
	Errors map[string]int
}

// Summarize reduces records to a summary. Records that started before
// skip after the first are left out (warm-up).
func Summarize(recs []Record, skip time.Duration) Summary {
	s := Summary{PerServer: map[string]int{}, Errors: map[string]int{}}
	if len(recs) == 0 {
		return s
	}
	from := recs[0].Start
	for _, r := range recs {
		from = minTime(from, r.Start)
	}
	from = from.Add(skip)
	var ttft, lat []time.Duration
	var first, last time.Time
	var tokens int
	for _, r := range recs {
		if r.Start.Before(from) {
			continue
		}
		s.Requests++
		if first.IsZero() || r.Start.Before(first) {
			first = r.Start
		}
		if end := r.Start.Add(r.Latency); end.After(last) {
			last = end
		}
		if !r.OK() {
			s.Failed++
			if len(s.Errors) < 10 || s.Errors[r.Err] > 0 {
				s.Errors[r.Err]++
			}
			continue
		}
		s.OK++
		tokens += r.OutputTokens
		s.PerServer[r.ServedBy]++
		ttft = append(ttft, r.TTFT)
		lat = append(lat, r.Latency)
	}
	if span := last.Sub(first).Seconds(); span > 0 {
		s.Throughput, s.TokensPerSecond = float64(s.OK)/span, float64(tokens)/span
	}
	s.TTFT, s.Latency = quantiles(ttft), quantiles(lat)
	return s
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func quantiles(d []time.Duration) Quantiles {
	if len(d) == 0 {
		return Quantiles{}
	}
	slices.Sort(d)
	return Quantiles{P50: quantile(d, 0.5), P90: quantile(d, 0.9), P99: quantile(d, 0.99)}
}

// quantile is the nearest-rank quantile of sorted d.
func quantile(d []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func sortByStart(recs []Record) {
	slices.SortStableFunc(recs, func(a, b Record) int { return a.Start.Compare(b.Start) })
}

// MaxShare is the largest count in per divided by the fair share
// total/servers: 1 is perfectly even, 2 means one server got twice its
// share.
func MaxShare(per map[string]int, servers int) float64 {
	if servers <= 0 {
		return 0
	}
	var total, most int
	for _, n := range per {
		total += n
		most = max(most, n)
	}
	if total == 0 {
		return 0
	}
	return float64(most) / (float64(total) / float64(servers))
}
