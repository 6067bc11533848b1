package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// metricsServer serves vLLM-style /metrics with the given queue and KV
// use; a negative queue answers 500.
func metricsServer(t *testing.T, queue, kv float64) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if queue < 0 {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		_, _ = fmt.Fprintf(w, `# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} %g
vllm:num_requests_running{engine="0",model_name="m"} 7.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} %g
`, queue, kv)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// runQueueKV starts the poller and waits until eps have been scraped.
func runQueueKV(t *testing.T, q *QueueKV, eps ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "the first scrapes", func() bool {
		for _, ep := range eps {
			if q.samples[ep].Load() == nil {
				return false
			}
		}
		return true
	})
}

func TestQueueKVPrefersLessQueueAndKV(t *testing.T) {
	t.Parallel()
	busy, free := metricsServer(t, 5, 0.9), metricsServer(t, 0, 0.1)
	failing := metricsServer(t, -1, 0)
	unpolled := "127.0.0.1:9" // not in Endpoints: never scraped
	q := NewQueueKV(QueueKVOptions{Endpoints: []string{busy, free, failing}, Interval: 10 * time.Millisecond, Seed: 1})
	runQueueKV(t, q, busy, free)

	// busy: queue 0, KV 0.1 → 0.2; free: 1 + 0.9 → 3.8; the unscraped
	// ones score the mean, (0+1)/2 and (0.1+0.9)/2 → 2.0.
	eps := []string{busy, unpolled, free}
	if got := q.Pick(eps); !slices.Equal(got, []string{free, unpolled, busy}) {
		t.Errorf("pick %v, want %v", got, []string{free, unpolled, busy})
	}
	sc := q.scores([]string{busy, free, failing, unpolled}, time.Now())
	want := []float64{0.2, 3.8, 2.0, 2.0}
	for i := range want {
		if d := sc[i] - want[i]; d > 1e-9 || d < -1e-9 {
			t.Errorf("scores %v, want %v", sc, want)
			break
		}
	}
	// Stale samples count as unscraped: everything ties, picks spread.
	seen := map[string]bool{}
	for range 60 {
		seen[q.scoresPick(eps, time.Now().Add(time.Hour))] = true
	}
	if len(seen) != 3 {
		t.Errorf("stale metrics: picks %v, want ties broken at random over all three", seen)
	}
}

// scoresPick is Pick at a given time.
func (q *QueueKV) scoresPick(eps []string, now time.Time) string {
	sc := q.scores(eps, now)
	best := []int{0}
	for i := 1; i < len(sc); i++ {
		switch {
		case sc[i] > sc[best[0]]+1e-9:
			best = []int{i}
		case sc[i] >= sc[best[0]]-1e-9:
			best = append(best, i)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return eps[best[q.rng.IntN(len(best))]]
}

func TestQueueKVEqualQueuesScoreOne(t *testing.T) {
	t.Parallel()
	a, b := metricsServer(t, 3, 0.5), metricsServer(t, 3, 0.2)
	q := NewQueueKV(QueueKVOptions{Endpoints: []string{a, b}, Interval: 10 * time.Millisecond})
	runQueueKV(t, q, a, b)
	sc := q.scores([]string{a, b}, time.Now())
	if sc[0] != 2*1+2*0.5 || sc[1] != 2*1+2*0.8 {
		t.Errorf("scores %v, want [3 3.6]", sc)
	}
	if got := q.Pick([]string{a, b}); got[0] != b {
		t.Errorf("pick %v, want %s first", got, b)
	}
}

func TestQueueKVThroughGateway(t *testing.T) {
	t.Parallel()
	full := startModel(t, func(m *modelServer) { m.metrics = "vllm:num_requests_waiting 9\nvllm:kv_cache_usage_perc 0.95\n" })
	empty := startModel(t, func(m *modelServer) { m.metrics = "vllm:num_requests_waiting 0\nvllm:kv_cache_usage_perc 0\n" })
	eps := []string{full.addr, empty.addr}
	q := NewQueueKV(QueueKVOptions{Endpoints: eps, Interval: 10 * time.Millisecond})
	runQueueKV(t, q, eps...)
	g, url := startGateway(t, Options{Endpoints: eps, Policy: q})
	for range 3 {
		if resp, got := post(t, client(t), url, chatBody(10, false)); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, got)
		}
	}
	if n := g.Stats().PerEndpoint[empty.addr].Routed; n != 3 || full.count() != 0 {
		t.Errorf("routed %d to the idle server, %d to the full one", n, full.count())
	}
}

func TestParseVLLM(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		text      string
		queue, kv float64
		ok        bool
	}{
		{"current names, two engines", "vllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 2\nvllm:num_requests_waiting{engine=\"1\",model_name=\"m\"} 3.0\nvllm:kv_cache_usage_perc{engine=\"0\"} 0.25\nvllm:kv_cache_usage_perc{engine=\"1\"} 0.5\n", 5, 0.5, true},
		{"older KV name, timestamp, CRLF", "vllm:num_requests_waiting 1 1700000000000\r\nvllm:gpu_cache_usage_perc{model_name=\"m\"} 0.75\r\n", 1, 0.75, true},
		{"quoted braces and spaces in labels", "vllm:num_requests_waiting{model_name=\"a } b\",x=\"q\\\"}\"} 4\n", 4, 0, true},
		{"similar names ignored", "vllm:num_requests_waiting_total 9\nvllm:num_requests_running 3\n# vllm:num_requests_waiting 8\n", 0, 0, false},
		{"NaN ignored", "vllm:kv_cache_usage_perc NaN\n", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, kv, ok := parseVLLM([]byte(tc.text))
			if q != tc.queue || kv != tc.kv || ok != tc.ok {
				t.Errorf("parseVLLM = %v, %v, %v; want %v, %v, %v", q, kv, ok, tc.queue, tc.kv, tc.ok)
			}
		})
	}
}
