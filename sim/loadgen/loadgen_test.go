package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sse is a server that streams max_tokens tokens as server-sent events,
// one event per token, after delay; "bad" and "cut" in the prompt make it
// fail in those ways.
func sse(t *testing.T, delay time.Duration) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Prompt    string `json:"prompt"`
			MaxTokens int    `json:"max_tokens"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad json", http.StatusBadRequest)
			return
		}
		if strings.HasPrefix(req.Prompt, "bad") {
			http.Error(w, `{"error":{"message":"nope"}}`, http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("X-Served-By", "pod-a")
		w.Header().Set("Content-Type", "text/event-stream")
		time.Sleep(delay)
		for i := range req.MaxTokens {
			fmt.Fprintf(w, "data: {\"choices\":[{\"text\":\"t%d \"}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		if strings.HasPrefix(req.Prompt, "cut") {
			return
		}
		fmt.Fprintf(w, "data: {\"choices\":[],\"usage\":{\"completion_tokens\":%d}}\n\ndata: [DONE]\n\n", req.MaxTokens)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestMixSamplesWithinBoundsAndMeans(t *testing.T) {
	m := ShareGPT()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		p, o := m.Sample(rng)
		if p < m.PromptMin || p > m.PromptMax || o < m.OutputMin || o > m.OutputMax {
			t.Fatalf("sample (%d, %d) outside the mix's bounds", p, o)
		}
	}
	p, o := m.Means()
	// Lognormal means: median·exp(σ²/2) = 211 and 132, a little less
	// after clipping.
	if p < 180 || p > 215 || o < 115 || o > 135 {
		t.Errorf("means %.0f / %.0f, want about 210 / 130", p, o)
	}
	if err := (Mix{}).Validate(); err == nil {
		t.Error("an empty mix validated")
	}
}

func TestPromptIsExactlyNTokens(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{1, 7, 300} {
		if got := len(Prompt(rng, n)); got != 4*n {
			t.Errorf("Prompt(%d) is %d bytes, want %d", n, got, 4*n)
		}
	}
}

func TestRunPoissonRecordsEveryRequest(t *testing.T) {
	srv := sse(t, 5*time.Millisecond)
	o := DefaultOptions()
	o.URL, o.Rate, o.Duration = srv.URL, 200, time.Second
	o.Mix.OutputMax = 8
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	recs := g.Run(context.Background(), func(Record) { done.Add(1) })
	// 200 expected; a Poisson count is within ±4σ (±57) all but never.
	if len(recs) < 143 || len(recs) > 257 || int(done.Load()) != len(recs) {
		t.Fatalf("%d records, %d callbacks; want about 200 of each", len(recs), done.Load())
	}
	for i, r := range recs {
		if !r.OK() || r.Status != 200 || r.ServedBy != "pod-a" || r.OutputTokens < 4 || r.OutputTokens > 8 {
			t.Fatalf("record %d: %+v", i, r)
		}
		if r.TTFT <= 0 || r.TTFT > r.Latency {
			t.Fatalf("record %d: TTFT %v, latency %v", i, r.TTFT, r.Latency)
		}
		if i > 0 && r.Start.Before(recs[i-1].Start) {
			t.Fatal("records not in start order")
		}
	}
	if g.InFlight() != 0 {
		t.Errorf("%d still in flight", g.InFlight())
	}
}

func TestFailuresAreRecorded(t *testing.T) {
	srv := sse(t, 0)
	g, err := New(Options{URL: srv.URL, Model: "m", Rate: 1, Duration: time.Second, Drain: time.Second, Timeout: time.Second, Mix: ShareGPT()})
	if err != nil {
		t.Fatal(err)
	}
	bad := g.send(context.Background(), []byte(`{"prompt":"bad","max_tokens":3}`))
	if bad.OK() || bad.Status != 503 || !strings.Contains(bad.Err, "nope") {
		t.Errorf("503: %+v", bad)
	}
	cut := g.send(context.Background(), []byte(`{"prompt":"cut","max_tokens":3}`))
	if cut.OK() || cut.Err != errNoDone.Error() || cut.TTFT == 0 {
		t.Errorf("cut stream: %+v", cut)
	}
	srv.Close()
	gone := g.send(context.Background(), []byte(`{"prompt":"x","max_tokens":3}`))
	if gone.OK() || gone.Status != 0 {
		t.Errorf("closed server: %+v", gone)
	}
}

func TestDrainCancelsStragglers(t *testing.T) {
	srv := sse(t, 5*time.Second)
	g, err := New(Options{URL: srv.URL, Model: "m", Rate: 1, Duration: time.Second, Drain: 100 * time.Millisecond, Timeout: time.Minute, Mix: ShareGPT()})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	recs := g.Burst(context.Background(), 3, nil)
	if len(recs) != 3 || time.Since(start) > 4*time.Second {
		t.Fatalf("%d records after %v; want 3, cut at the drain", len(recs), time.Since(start))
	}
	if again := g.Burst(context.Background(), 2, nil); len(again) != 2 {
		t.Errorf("a second burst returned %d records, want its own 2", len(again))
	}
	for _, r := range recs {
		if r.OK() {
			t.Errorf("a straggler cut at the drain counted as OK: %+v", r)
		}
	}
}

func TestSummarize(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var recs []Record
	for i := range 100 {
		recs = append(recs, Record{Start: t0.Add(time.Duration(i) * 100 * time.Millisecond),
			TTFT: time.Duration(i+1) * time.Millisecond, Latency: time.Second, OutputTokens: 10,
			Status: 200, ServedBy: []string{"a", "b"}[i%2]})
	}
	recs = append(recs, Record{Start: t0.Add(5 * time.Second), Err: "status 503", Latency: time.Millisecond})
	s := Summarize(recs, 0)
	if s.Requests != 101 || s.OK != 100 || s.Failed != 1 || s.Errors["status 503"] != 1 {
		t.Fatalf("counts %+v", s)
	}
	if s.TTFT.P50 != 50*time.Millisecond || s.TTFT.P90 != 90*time.Millisecond || s.TTFT.P99 != 99*time.Millisecond {
		t.Errorf("TTFT quantiles %+v", s.TTFT)
	}
	// Requests start every 100 ms from t0 to t0+9.9 s and end 1 s
	// later: 90 (i = 0…89) end by the last start, over 9.9 s.
	if want := 90 / 9.9; math.Abs(s.Throughput-want) > 1e-9 || math.Abs(s.TokensPerSecond-10*want) > 1e-9 {
		t.Errorf("throughput %.3f req/s, %.2f tok/s; want %.3f, %.2f", s.Throughput, s.TokensPerSecond, want, 10*want)
	}
	if sk := Summarize(recs, 5*time.Second); sk.Requests != 51 {
		t.Errorf("with 5 s warm-up: %d requests, want 51", sk.Requests)
	}
	if got := MaxShare(s.PerServer, 4); got != 2 {
		t.Errorf("MaxShare: %v, want 2 (50 of 100 over 4 servers)", got)
	}
}
