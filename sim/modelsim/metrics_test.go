package modelsim

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/collector/modelserver"
)

func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	ts := start(t, nil, true)
	if _, n := timed(t, ts.URL, 8, 5); n != 5 {
		t.Fatalf("got %d tokens", n)
	}
	const want = `
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{model_name="m"} 5
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{model_name="m"} 0
# HELP vllm:num_preemptions_total Cumulative number of preemptions from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{model_name="m"} 0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 0
# HELP vllm:prompt_tokens_total Number of prefill tokens processed.
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{model_name="m"} 8
# HELP vllm:request_success_total Count of successfully processed requests.
# TYPE vllm:request_success_total counter
vllm:request_success_total{finished_reason="length",model_name="m"} 1
`
	names := []string{"vllm:generation_tokens_total", "vllm:kv_cache_usage_perc", "vllm:num_preemptions_total",
		"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:prompt_tokens_total", "vllm:request_success_total"}
	if err := testutil.GatherAndCompare(ts.metrics.reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// One request of 5 tokens: 1 TTFT, 4 inter-token gaps, 1 end to end.
	fams, err := ts.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts, sums := map[string]uint64{}, map[string]float64{}
	for _, f := range fams {
		if h := f.GetMetric()[0].GetHistogram(); h != nil {
			counts[f.GetName()], sums[f.GetName()] = h.GetSampleCount(), h.GetSampleSum()
		}
	}
	// vLLM's request stages too: one each, the prompt's 8 tokens, and a
	// prefill and an inference time within the request's own.
	wantCounts := map[string]uint64{"vllm:time_to_first_token_seconds": 1, "vllm:inter_token_latency_seconds": 4,
		"vllm:time_per_output_token_seconds": 4, "vllm:e2e_request_latency_seconds": 1,
		"vllm:request_queue_time_seconds": 1, "vllm:request_prefill_time_seconds": 1,
		"vllm:request_inference_time_seconds": 1, "vllm:request_prompt_tokens": 1}
	if fmt.Sprint(counts) != fmt.Sprint(wantCounts) {
		t.Errorf("histogram counts = %v, want %v", counts, wantCounts)
	}
	if sums["vllm:request_prompt_tokens"] != 8 || !(sums["vllm:request_prefill_time_seconds"] > 0) ||
		sums["vllm:request_prefill_time_seconds"] > sums["vllm:time_to_first_token_seconds"] ||
		sums["vllm:request_inference_time_seconds"] > sums["vllm:e2e_request_latency_seconds"] {
		t.Errorf("histogram sums = %v", sums)
	}
	resp, body, err := call(context.Background(), http.MethodGet, ts.URL+"/metrics", nil)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("X-Served-By") != "sim-0" ||
		!strings.Contains(string(body), `vllm:time_to_first_token_seconds_count{model_name="m"} 1`) {
		t.Errorf("GET /metrics: %v, %v:\n%s", err, resp, body)
	}
}

func TestMetricsDelay(t *testing.T) {
	t.Parallel()
	ts := start(t, nil, true)
	const delay = 300 * time.Millisecond
	ts.SetMetricsDelay(delay)
	begin := time.Now()
	resp, _, err := call(context.Background(), http.MethodGet, ts.URL+"/metrics", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %v", err, resp)
	}
	if took := time.Since(begin); took < delay {
		t.Errorf("/metrics answered after %s, want at least %s", took, delay)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := call(ctx, http.MethodGet, ts.URL+"/metrics", nil); err == nil {
		t.Error("a 50 ms scrape of a delayed /metrics succeeded")
	}
	ts.SetMetricsDelay(0)
	if resp, _, err := call(context.Background(), http.MethodGet, ts.URL+"/metrics", nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /metrics without delay: %v %v", err, resp)
	}
}

// TestAgentReadsMetrics scrapes the simulator with the agent's own
// model-server source, as a standalone vLLM endpoint.
func TestAgentReadsMetrics(t *testing.T) {
	t.Parallel()
	ts := start(t, func(o *Options) { o.Profile.MaxRunning = 1 }, true)
	u, _ := url.Parse(ts.URL)
	o := modelserver.DefaultOptions()
	o.Interval = 20 * time.Millisecond
	o.Endpoints = fmt.Sprintf("name=sim,endpoint=%s,engine=vllm", u.Host)
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := modelserver.New(ctx, o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, n := timed(t, ts.URL, 4, 3); n != 3 {
		t.Fatal("warm-up request failed")
	}
	hog, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		_, _, _ = call(hog, http.MethodPost, ts.URL+"/v1/completions", map[string]any{"prompt": promptOf(100), "max_tokens": 4000})
	}()
	go func() {
		_, _, _ = call(hog, http.MethodPost, ts.URL+"/v1/completions", map[string]any{"prompt": "x", "max_tokens": 4000})
	}()
	waitFor(t, "one running, one waiting", func() bool { st := ts.Stats(); return st.Running == 1 && st.Waiting == 1 })
	waitFor(t, "the agent to read the load", func() bool {
		r := src.Latest()["standalone/sim"]
		if r == nil || r.Err != "" {
			return false
		}
		st := r.Stats
		return st.Running == 1 && st.Waiting == 1 && st.HasKVCacheUsage && st.KVCacheUsage > 0 &&
			st.Latency != nil && st.Latency.TTFTCount >= 1 && st.Latency.TPOTCount >= 2 &&
			st.Latency.PrefillCount >= 1 && st.Latency.InferenceCount >= 1 && st.Latency.PromptTokensSum >= 4
	})
}
