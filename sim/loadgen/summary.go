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
	// Throughput is the steady-state rate of completions, in requests
	// per second, and TokensPerSecond their output tokens per second:
	// successful requests that ended between the end of the warm-up and
	// the last request's start, over that span. Unlike completions over
	// the whole run, it is not diluted by the tail after the last
	// arrival, and it falls below the offered rate when the pool cannot
	// keep up.
	Throughput, TokensPerSecond float64
	// TTFT and Latency are over the successful requests; a request cut
	// at the drain deadline counts in Failed only, so under overload
	// read them together with Failed.
	TTFT, Latency Quantiles
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
	s.Throughput, s.TokensPerSecond = rates(recs, from)
	var ttft, lat []time.Duration
	for _, r := range recs {
		if r.Start.Before(from) {
			continue
		}
		s.Requests++
		if !r.OK() {
			s.Failed++
			if len(s.Errors) < 10 || s.Errors[r.Err] > 0 {
				s.Errors[r.Err]++
			}
			continue
		}
		s.OK++
		s.PerServer[r.ServedBy]++
		ttft = append(ttft, r.TTFT)
		lat = append(lat, r.Latency)
	}
	s.TTFT, s.Latency = quantiles(ttft), quantiles(lat)
	return s
}

// rates counts the successful completions between from and the last
// request's start, per second.
func rates(recs []Record, from time.Time) (reqs, tokens float64) {
	var to time.Time
	for _, r := range recs {
		if r.Start.After(to) {
			to = r.Start
		}
	}
	span := to.Sub(from).Seconds()
	if span <= 0 {
		return 0, 0
	}
	var n, tok int
	for _, r := range recs {
		if end := r.Start.Add(r.Latency); r.OK() && !end.Before(from) && !end.After(to) {
			n++
			tok += r.OutputTokens
		}
	}
	return float64(n) / span, float64(tok) / span
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
