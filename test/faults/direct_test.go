//go:build cgo

package faults

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/app"
)

// queueServer is a model server on its own loopback IP whose /metrics
// shows a settable vLLM queue.
type queueServer struct {
	*httptest.Server
	waiting atomic.Int64
	reads   atomic.Int64
}

func startQueueServer(t *testing.T, ip string, waiting int64) *queueServer {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	q := &queueServer{}
	q.waiting.Store(waiting)
	q.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		q.reads.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"llama\"} %d\n"+
			"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"llama\"} 8\n"+
			"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name=\"llama\"} 0.5\n", q.waiting.Load())
	}))
	q.Listener.Close()
	q.Listener = ln
	q.Start()
	t.Cleanup(q.Close)
	return q
}

func (q *queueServer) addr() string { return q.Listener.Addr().String() }

// TestAgentGoneServersReadDirectly: the nodes' agents stop reporting (an
// eviction, an OOM kill, a rollout). The picker reads the two model
// servers itself: requests follow the servers' live queues, not the last
// reports' and not in-flight counts alone, and the decisions are neither
// degraded nor counted as made without fresh telemetry. When the agents
// report again, their reports win and the servers are no longer read.
func TestAgentGoneServersReadDirectly(t *testing.T) {
	t.Parallel()
	a, b := startQueueServer(t, "127.0.0.3", 40), startQueueServer(t, "127.0.0.4", 0)
	p := startPicker(t, func(o *app.Options) {
		o.Pool.Endpoints = a.addr() + "," + b.addr()
		o.Direct.Interval = 20 * time.Millisecond
	})
	p.waitReadiness(t, true)
	m := p.MetricsAddr().String()
	report := func(seq uint64, interval time.Duration, qa, qb float64) {
		p.send(t, nodeReport("gpu-1", seq, interval, modelServerPod("a", "127.0.0.3", qa, 0.5)))
		p.send(t, nodeReport("gpu-2", seq, interval, modelServerPod("b", "127.0.0.4", qb, 0.5)))
	}
	// Fresh reports: the picker reads neither server itself.
	report(1, time.Minute, 40, 0)
	eventually(t, "the reports in the view", func() bool {
		return metric(t, m, "headroom_picker_endpoints", map[string]string{"telemetry": "fresh"}) == 2
	})
	before := a.reads.Load() + b.reads.Load()
	time.Sleep(100 * time.Millisecond)
	if n := a.reads.Load() + b.reads.Load() - before; n != 0 {
		t.Errorf("the picker read the servers %d times while their agents report them", n)
	}
	firstTo(t, p, b.addr(), "fresh reports, a's queue 40")

	// The agents go quiet and the queues swap: only a direct read can know.
	report(2, 50*time.Millisecond, 40, 0)
	a.waiting.Store(0)
	b.waiting.Store(40)
	eventually(t, "both endpoints read directly", func() bool {
		return metric(t, m, "headroom_picker_endpoints", map[string]string{"telemetry": "direct"}) == 2
	})
	degraded0 := metric(t, m, decisions, map[string]string{"result": "degraded"})
	firstTo(t, p, a.addr(), "agents gone, the servers' own queues 0 and 40")
	if d := metric(t, m, decisions, map[string]string{"result": "degraded"}) - degraded0; d != 0 {
		t.Errorf("%v decisions degraded while the servers were read directly", d)
	}
	if ok := metric(t, m, "headroom_picker_direct_reads_total", map[string]string{"result": "ok"}); ok == 0 {
		t.Error("no direct read counted")
	}

	// The agents are back, with the queues swapped once more.
	report(3, time.Minute, 40, 0)
	eventually(t, "the reports back in the view", func() bool {
		return metric(t, m, "headroom_picker_endpoints", map[string]string{"telemetry": "fresh"}) == 2
	})
	firstTo(t, p, b.addr(), "agents back, a's reported queue 40")
}

// firstTo checks that the next requests all go first to endpoint, decided
// on fresh telemetry.
func firstTo(t *testing.T, p *picker, endpoint, why string) {
	t.Helper()
	for range 10 {
		if r, fresh := byTelemetry(t, p); !fresh || r.first() != endpoint {
			t.Fatalf("%s: routed to %v (fresh telemetry %v), want %s first", why, r.dest, fresh, endpoint)
		}
	}
}
