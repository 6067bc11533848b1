package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/snapshot"
)

// fullModelServer is a reading with every field, stale since its last
// good scrape.
func fullModelServer() *snapshot.ModelServer {
	return &snapshot.ModelServer{
		Engine: "vllm", URL: "http://10.0.0.5:8000/metrics",
		SampleTime: time.Unix(1700000000, 0), StaleSince: time.Unix(1700000001, 0), Err: "get: context deadline exceeded",
		Stats: snapshot.ModelServerStats{Waiting: 5, Running: 21, KVCacheUsage: 0.63, HasKVCacheUsage: true,
			LoRA:             &snapshot.LoRAState{Running: []string{"a", "b"}, Waiting: []string{"c"}, MaxAdapters: 4},
			GenerationTokens: 1234, HasGenerationTokens: true},
		Dropped: map[string]uint64{"negative": 12, "out_of_range": 3},
	}
}

var msFamilies = []string{
	"headroom_modelserver_scrape_success", "headroom_modelserver_last_success_timestamp_seconds",
	"headroom_modelserver_stale_since_timestamp_seconds", "headroom_modelserver_requests_waiting",
	"headroom_modelserver_requests_running", "headroom_modelserver_kv_cache_usage_ratio",
	"headroom_modelserver_lora_adapters", "headroom_modelserver_lora_max_adapters",
	"headroom_modelserver_values_dropped_total",
}

func TestModelServerMetrics(t *testing.T) {
	t.Parallel()
	s := &snapshot.Snapshot{Node: "node-a", Attribution: &snapshot.Attribution{Pods: []snapshot.Pod{
		{UID: "u1", Namespace: "llm", Name: "vllm-0", ModelServer: fullModelServer()},
		// Never answered: only success and staleness.
		{UID: "u2", Namespace: "llm", Name: "sg-0", ModelServer: &snapshot.ModelServer{Engine: "sglang", StaleSince: time.Unix(1700000002, 0), Err: "refused"}},
		// Fresh, no KV or LoRA readings; a standalone endpoint.
		{Name: "trt-0", ModelServer: &snapshot.ModelServer{Engine: "trtllm", SampleTime: time.Unix(1700000003, 0), Stats: snapshot.ModelServerStats{Waiting: 1, Running: 2}}},
		// No model server reading at all.
		{UID: "u4", Namespace: "llm", Name: "other"},
	}}}
	want := `
# HELP headroom_modelserver_kv_cache_usage_ratio Fraction of KV-cache blocks in use (0-1), the fullest engine's.
# TYPE headroom_modelserver_kv_cache_usage_ratio gauge
headroom_modelserver_kv_cache_usage_ratio{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"} 0.63
# HELP headroom_modelserver_last_success_timestamp_seconds When the model server last answered; 0 if never.
# TYPE headroom_modelserver_last_success_timestamp_seconds gauge
headroom_modelserver_last_success_timestamp_seconds{engine="sglang",namespace="llm",node="node-a",pod="sg-0"} 0
headroom_modelserver_last_success_timestamp_seconds{engine="trtllm",namespace="",node="node-a",pod="trt-0"} 1.700000003e+09
headroom_modelserver_last_success_timestamp_seconds{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"} 1.7e+09
# HELP headroom_modelserver_lora_adapters LoRA adapters of running or waiting requests.
# TYPE headroom_modelserver_lora_adapters gauge
headroom_modelserver_lora_adapters{engine="vllm",namespace="llm",node="node-a",pod="vllm-0",state="running"} 2
headroom_modelserver_lora_adapters{engine="vllm",namespace="llm",node="node-a",pod="vllm-0",state="waiting"} 1
# HELP headroom_modelserver_lora_max_adapters LoRA adapters that fit in GPU memory at once.
# TYPE headroom_modelserver_lora_max_adapters gauge
headroom_modelserver_lora_max_adapters{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"} 4
# HELP headroom_modelserver_requests_running Requests in the model server's running batch, all models summed.
# TYPE headroom_modelserver_requests_running gauge
headroom_modelserver_requests_running{engine="trtllm",namespace="",node="node-a",pod="trt-0"} 2
headroom_modelserver_requests_running{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"} 21
# HELP headroom_modelserver_requests_waiting Requests queued in the model server, all models summed.
# TYPE headroom_modelserver_requests_waiting gauge
headroom_modelserver_requests_waiting{engine="trtllm",namespace="",node="node-a",pod="trt-0"} 1
headroom_modelserver_requests_waiting{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"} 5
# HELP headroom_modelserver_scrape_success 1 if the last scrape of the pod's model server succeeded.
# TYPE headroom_modelserver_scrape_success gauge
headroom_modelserver_scrape_success{engine="sglang",namespace="llm",node="node-a",pod="sg-0"} 0
headroom_modelserver_scrape_success{engine="trtllm",namespace="",node="node-a",pod="trt-0"} 1
headroom_modelserver_scrape_success{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"} 0
# HELP headroom_modelserver_stale_since_timestamp_seconds When scrapes of the model server started failing; 0 while it answers.
# TYPE headroom_modelserver_stale_since_timestamp_seconds gauge
headroom_modelserver_stale_since_timestamp_seconds{engine="sglang",namespace="llm",node="node-a",pod="sg-0"} 1.700000002e+09
headroom_modelserver_stale_since_timestamp_seconds{engine="trtllm",namespace="",node="node-a",pod="trt-0"} 0
headroom_modelserver_stale_since_timestamp_seconds{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"} 1.700000001e+09
# HELP headroom_modelserver_values_dropped_total Impossible values the agent left out of the model server's scrapes (negative counts, non-finite values, ratios outside 0-1, families with too many series, LoRA lists past their limit), by reason.
# TYPE headroom_modelserver_values_dropped_total counter
headroom_modelserver_values_dropped_total{engine="vllm",namespace="llm",node="node-a",pod="vllm-0",reason="negative"} 12
headroom_modelserver_values_dropped_total{engine="vllm",namespace="llm",node="node-a",pod="vllm-0",reason="out_of_range"} 3
`
	e := New(func() *snapshot.Snapshot { return s })
	if err := testutil.GatherAndCompare(e, strings.NewReader(want), msFamilies...); err != nil {
		t.Error(err)
	}
}
