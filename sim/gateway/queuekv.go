package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Weights of the reference endpoint picker's default load scorers.
const (
	queueWeight = 2
	kvWeight    = 2
)

// QueueKVOptions configures a QueueKV.
type QueueKVOptions struct {
	// Endpoints are polled for their /metrics.
	Endpoints []string
	// Interval is the poll period (default 50ms, the reference picker's).
	Interval time.Duration
	// Timeout bounds one scrape (default 1s).
	Timeout time.Duration
	// StaleAfter is how old a scrape may be before the endpoint counts as
	// never scraped (default 2s, the reference picker's metrics staleness
	// threshold).
	StaleAfter time.Duration
	// Client scrapes (default: a client of its own with keep-alive).
	Client *http.Client
	// Seed seeds the tie-breaking.
	Seed uint64
}

// QueueKV is the Gateway API Inference Extension reference endpoint
// picker's default load scorers, reimplemented from their documented
// weights: queue 2 and KV-cache 2. Its prefix-cache scorer (weight 3) is
// left out: the benchmark's prompts share no prefixes worth routing on,
// and the gateway keeps no prefix index. It polls every endpoint's vLLM
// /metrics every Interval (vllm:num_requests_waiting,
// vllm:kv_cache_usage_perc or the older vllm:gpu_cache_usage_perc) and
// scores each candidate: queue score (maxQ − q)/(maxQ − minQ) over the
// candidates (1 when all are equal), KV score 1 − KV-cache use. It picks
// the highest weighted sum, ties broken at random; the fallbacks are the
// next best. An endpoint never scraped (or not lately) scores the
// candidates' mean. Between scrapes every request sees the same numbers,
// as with the reference picker.
type QueueKV struct {
	o       QueueKVOptions
	samples map[string]*atomic.Pointer[kvSample] // fixed at New: read without a lock
	mu      sync.Mutex
	rng     *rand.Rand
}

// kvSample is one scrape of an endpoint.
type kvSample struct {
	queue, kv float64
	at        time.Time
}

// NewQueueKV returns the policy; Run polls.
func NewQueueKV(o QueueKVOptions) *QueueKV {
	if o.Interval <= 0 {
		o.Interval = 50 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 2 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: 90 * time.Second, DisableCompression: true}}
	}
	o.Endpoints = slices.Clone(o.Endpoints)
	q := &QueueKV{o: o, samples: make(map[string]*atomic.Pointer[kvSample], len(o.Endpoints)), rng: newRand(o.Seed)}
	for _, ep := range o.Endpoints {
		q.samples[ep] = &atomic.Pointer[kvSample]{}
	}
	return q
}

// Name implements Policy.
func (*QueueKV) Name() string { return "queue-kv" }

// Done implements Policy; the scores come from the servers' metrics only.
func (*QueueKV) Done(string) {}

// Run polls every endpoint, each on its own clock, until ctx ends.
func (q *QueueKV) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for ep, slot := range q.samples {
		wg.Go(func() { q.poll(ctx, ep, slot) })
	}
	wg.Wait()
	q.o.Client.CloseIdleConnections()
}

func (q *QueueKV) poll(ctx context.Context, ep string, slot *atomic.Pointer[kvSample]) {
	t := time.NewTicker(q.o.Interval)
	defer t.Stop()
	var buf bytes.Buffer
	for {
		if s, err := q.scrape(ctx, ep, &buf); err == nil {
			slot.Store(s)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// scrape reads one endpoint's /metrics into buf and parses it.
func (q *QueueKV) scrape(ctx context.Context, ep string, buf *bytes.Buffer) (*kvSample, error) {
	ctx, cancel := context.WithTimeout(ctx, q.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ep+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := q.o.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %d", ep, resp.StatusCode)
	}
	buf.Reset()
	if _, err := io.Copy(buf, io.LimitReader(resp.Body, 16<<20)); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", ep, err)
	}
	queue, kv, ok := parseVLLM(buf.Bytes())
	if !ok {
		return nil, fmt.Errorf("scrape %s: no vLLM queue or KV-cache metric", ep)
	}
	return &kvSample{queue: queue, kv: kv, at: time.Now()}, nil
}

// Pick implements Policy.
func (q *QueueKV) Pick(eps []string) []string {
	scores := q.scores(eps, time.Now())
	order := make([]int, len(eps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmpDesc(scores[a], scores[b]) })
	ties := 1
	for ties < len(order) && scores[order[ties]] >= scores[order[0]]-1e-9 {
		ties++
	}
	if ties > 1 {
		q.mu.Lock()
		k := q.rng.IntN(ties)
		q.mu.Unlock()
		order[0], order[k] = order[k], order[0]
	}
	out := make([]string, 0, min(len(eps), maxPicks))
	for _, i := range order {
		if len(out) == cap(out) {
			break
		}
		if !contains(out, eps[i]) {
			out = append(out, eps[i])
		}
	}
	return out
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// scores is each candidate's weighted score.
func (q *QueueKV) scores(eps []string, now time.Time) []float64 {
	samples := make([]*kvSample, len(eps))
	minQ, maxQ := math.Inf(1), math.Inf(-1)
	for i, ep := range eps {
		if slot := q.samples[ep]; slot != nil {
			if s := slot.Load(); s != nil && now.Sub(s.at) <= q.o.StaleAfter {
				samples[i] = s
				minQ, maxQ = min(minQ, s.queue), max(maxQ, s.queue)
			}
		}
	}
	qs, kvs := make([]float64, len(eps)), make([]float64, len(eps))
	var sumQ, sumKV float64
	scraped := 0
	for i, s := range samples {
		if s == nil {
			continue
		}
		qs[i] = 1
		if maxQ > minQ {
			qs[i] = (maxQ - s.queue) / (maxQ - minQ)
		}
		kvs[i] = 1 - min(max(s.kv, 0), 1)
		sumQ, sumKV, scraped = sumQ+qs[i], sumKV+kvs[i], scraped+1
	}
	out := make([]float64, len(eps))
	for i, s := range samples {
		if s == nil && scraped > 0 {
			qs[i], kvs[i] = sumQ/float64(scraped), sumKV/float64(scraped)
		}
		out[i] = queueWeight*qs[i] + kvWeight*kvs[i]
	}
	return out
}

// parseVLLM reads vLLM's text exposition: the waiting requests (summed
// over series) and the KV-cache use (the highest series), from
// vllm:num_requests_waiting and vllm:kv_cache_usage_perc (or
// vllm:gpu_cache_usage_perc). ok is false when neither is there.
func parseVLLM(b []byte) (queue, kv float64, ok bool) {
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		name, rest := splitName(line)
		switch string(name) {
		case "vllm:num_requests_waiting":
			if v, vok := sampleValue(rest); vok {
				queue, ok = queue+v, true
			}
		case "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc":
			if v, vok := sampleValue(rest); vok {
				kv, ok = max(kv, v), true
			}
		}
	}
	return queue, kv, ok
}

// splitName splits a sample line into its metric name and what follows
// the label set (the value and an optional timestamp).
func splitName(line []byte) (name, rest []byte) {
	i := bytes.IndexAny(line, "{ \t")
	if i < 0 {
		return line, nil
	}
	name, rest = line[:i], line[i:]
	if rest[0] != '{' {
		return name, rest
	}
	inQuote := false
	for j := 1; j < len(rest); j++ {
		switch c := rest[j]; {
		case inQuote && c == '\\':
			j++
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == '}':
			return name, rest[j+1:]
		}
	}
	return name, nil
}

// sampleValue parses the value that starts rest.
func sampleValue(rest []byte) (float64, bool) {
	rest = bytes.TrimLeft(rest, " \t")
	if i := bytes.IndexAny(rest, " \t\r"); i >= 0 {
		rest = rest[:i]
	}
	v, err := strconv.ParseFloat(string(rest), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	return v, true
}
