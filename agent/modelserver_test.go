//go:build cgo

package agent_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"
)

// TestModelServerEndToEnd: the GPU pod vllm-0 serves vLLM metrics on
// loopback, named by its engine label and port annotation; its readings
// appear on /metrics. small-a's server is unreachable: it alone is
// stale.
func TestModelServerEndToEnd(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("../collector/modelserver/testdata/vllm.prom")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	n := newNode(t)
	// vllm-0 gets a loopback IP, as if its server ran on this host.
	n.runtime.RemovePod(uidVLLM)
	n.runtime.AddSandbox(uidVLLM, "llm", "vllm-0", "127.0.0.1", true)
	n.runtime.SetPodMeta(uidVLLM,
		map[string]string{"inference.networking.k8s.io/engine-type": "vllm"},
		map[string]string{"headroom.dev/metrics-port": port, "prometheus.io/port": "1"})
	o := n.options(time.Second)
	mo := modelServerOptions(t, o)
	mo.Interval, mo.Timeout = 50*time.Millisecond, 2*time.Second
	a := start(t, o)
	const l = `{engine="vllm",namespace="llm",node="node-a",pod="vllm-0"}`
	waitMetrics(t, a,
		`headroom_collector_success{collector="modelserver"} 1`,
		`headroom_modelserver_scrape_success`+l+` 1`,
		`headroom_modelserver_requests_waiting`+l+` 5`,
		`headroom_modelserver_requests_running`+l+` 21`,
		`headroom_modelserver_kv_cache_usage_ratio`+l+` 0.63`,
		`headroom_modelserver_lora_max_adapters`+l+` 4`,
		`headroom_modelserver_lora_adapters{engine="vllm",namespace="llm",node="node-a",pod="vllm-0",state="running"} 2`,
		`headroom_modelserver_scrape_success{engine="vllm",namespace="llm",node="node-a",pod="small-a"} 0`,
		`headroom_pod_info{ip="127.0.0.1",namespace="llm",node="node-a",pod="vllm-0",uid="`+uidVLLM+`"} 1`,
	)
}
