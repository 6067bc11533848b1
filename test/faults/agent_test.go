//go:build cgo

package faults

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gonvmlapi "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
)

// byTelemetry routes one request and reports its destination and whether
// it was decided on fresh telemetry (not counted as made without it).
func byTelemetry(t *testing.T, p *picker) (routed, bool) {
	t.Helper()
	m := p.MetricsAddr().String()
	before := metric(t, m, blind, nil)
	r := p.route(t)
	if r.status != http.StatusOK {
		t.Fatalf("the picker refused a request: %+v", r)
	}
	return r, metric(t, m, blind, nil) == before
}

// onlyTo checks that the next requests all go to endpoint alone, with no
// other endpoint even as a fallback.
func onlyTo(t *testing.T, p *picker, endpoint, why string) {
	t.Helper()
	for range 10 {
		if r, fresh := byTelemetry(t, p); !fresh || !slices.Equal(r.dest, []string{endpoint}) {
			t.Fatalf("%s: routed to %v (fresh telemetry %v), want %s alone", why, r.dest, fresh, endpoint)
		}
	}
}

// TestNVMLLibraryMissing runs the agent with go-nvml pointed at a
// libnvidia-ml that does not exist, as on a node whose driver is not
// installed: the real dlopen fails. A single go-nvml call after that
// failed Init would kill the test process. The nvml collector reports
// failure and no GPU series are served, while the pods and model-server
// sources, /metrics, /readyz and the report stream keep working, and the
// picker routes by those reports.
func TestNVMLLibraryMissing(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := n.picker(t)
	missing := gonvmlapi.New(gonvmlapi.WithLibraryPath(filepath.Join(t.TempDir(), "libnvidia-ml.so.1")))
	a := n.startAgent(t, p, gonvml.FromInterface(missing))
	eventually(t, "the agent's other sources", func() bool {
		return a.metric(t, "headroom_collector_success", map[string]string{"collector": "pods"}) == 1 &&
			a.metric(t, "headroom_collector_success", map[string]string{"collector": "modelserver"}) == 1 &&
			a.metric(t, "headroom_modelserver_requests_waiting", map[string]string{"pod": "llm-b"}) == 5
	})
	if v := a.metric(t, "headroom_collector_success", map[string]string{"collector": "nvml"}); v != 0 {
		t.Errorf("nvml collector success = %v without the library, want 0", v)
	}
	_, body := a.get(t, "/metrics")
	for _, l := range strings.Split(body, "\n") {
		// The pods source's count of processes it could not place is
		// node-wide and stays; every GPU series comes from NVML.
		if strings.HasPrefix(l, "headroom_gpu_") && !strings.HasPrefix(l, "headroom_gpu_unattributed_processes{") {
			t.Errorf("GPU series served without NVML: %s", l)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := a.get(t, path); code != http.StatusOK {
			t.Errorf("%s = %d, want 200: the agent serves its other sources", path, code)
		}
	}
	eventually(t, "reports with both pods' model-server readings", func() bool { return freshReadings(latest(p), "llm-a", "llm-b") })
	if g := latest(p).GetGpus(); len(g) != 0 {
		t.Errorf("the report carries %d GPUs without NVML", len(g))
	}
	eventually(t, "a decision by the agent's telemetry", func() bool { _, fresh := byTelemetry(t, p); return fresh })
}

// TestGPULostMidRun loses GPU 1 (llm-b's) off the bus: the agent reports
// it lost, with its identity and without readings, while the other seven
// keep reporting; the picker sends nothing to llm-b. When the GPU comes
// back it reports again, but the loss raised Xid 79, a critical Xid, so
// the picker keeps llm-b out for the Xid hold (5 minutes).
func TestGPULostMidRun(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := n.picker(t)
	a := n.startAgent(t, p, nil)
	eventually(t, "both pods' telemetry", func() bool { return freshReadings(latest(p), "llm-a", "llm-b") })
	seen := map[string]bool{}
	eventually(t, "fresh-telemetry decisions to reach both pods", func() bool {
		if r, fresh := byTelemetry(t, p); fresh {
			seen[r.first()] = true
		}
		return seen[n.a.endpoint()] && seen[n.b.endpoint()]
	})

	n.sim.LoseGPU(n.b.gpu)
	eventually(t, "the picker's report to say GPU 1 is lost", func() bool { return gpuIn(latest(p), 1).GetHealth().GetLost() })
	seq := latest(p).GetSequence()
	eventually(t, "newer reports", func() bool { return latest(p).GetSequence() > seq+2 })
	r := latest(p)
	if g := gpuIn(r, 1); g.GetUuid() != n.sim.UUID(1) || g.GetMemoryTotalBytes() != 0 {
		t.Errorf("lost GPU: uuid %q, memory %d; want its identity and no readings", g.GetUuid(), g.GetMemoryTotalBytes())
	}
	for i := range n.sim.NumGPUs() {
		if g := gpuIn(r, i); i != 1 && (g.GetHealth().GetLost() || g.GetMemoryTotalBytes() == 0) {
			t.Errorf("GPU %d stopped reporting when GPU 1 was lost: %v", i, g)
		}
	}
	if v := a.metric(t, "headroom_gpu_lost", map[string]string{"gpu": "1"}); v != 1 {
		t.Errorf("headroom_gpu_lost{gpu=1} = %v, want 1", v)
	}
	eventually(t, "the picker to stop sending to llm-b", func() bool {
		r, fresh := byTelemetry(t, p)
		return fresh && slices.Equal(r.dest, []string{n.a.endpoint()})
	})
	onlyTo(t, p, n.a.endpoint(), "GPU 1 lost")

	n.sim.RecoverGPU(n.b.gpu)
	eventually(t, "GPU 1 reported again", func() bool {
		g := gpuIn(latest(p), 1)
		return !g.GetHealth().GetLost() && g.GetMemoryTotalBytes() > 0
	})
	if v := a.metric(t, "headroom_gpu_lost", map[string]string{"gpu": "1"}); v != 0 {
		t.Errorf("headroom_gpu_lost{gpu=1} = %v after recovery, want 0", v)
	}
	// A few more reports, so the routing view has the recovered GPU.
	seq = latest(p).GetSequence()
	eventually(t, "reports after the recovery", func() bool { return latest(p).GetSequence() > seq+2 })
	xid79 := false
	for _, x := range gpuIn(latest(p), 1).GetHealth().GetXidErrors() {
		xid79 = xid79 || (x.GetCode() == 79 && x.GetCount() > 0)
	}
	if !xid79 {
		t.Fatal("the loss left no Xid 79 in the report")
	}
	onlyTo(t, p, n.a.endpoint(), "GPU 1 back, within the hold of its Xid 79")
}

// TestCRIDown stops the container runtime's CRI socket: the agent keeps
// the runtime's last view (pod UIDs, IPs, containers), marks it stale on
// /metrics, and keeps the GPU, kubelet and model-server data flowing to
// the picker, which keeps routing by it. When the runtime returns, the
// view is fresh again.
func TestCRIDown(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := n.picker(t)
	a := n.startAgent(t, p, nil)
	staleSince := func(source string) float64 {
		return a.metric(t, "headroom_attribution_stale_since_timestamp_seconds", map[string]string{"source": source})
	}
	podInfo := map[string]string{"pod": "llm-a", "ip": n.a.ip, "uid": n.a.uid}
	eventually(t, "attribution from both views", func() bool {
		return a.metric(t, "headroom_pod_info", podInfo) == 1 && staleSince("runtime") == 0 && staleSince("kubelet") == 0
	})

	n.runtime.Stop()
	eventually(t, "the runtime's view marked stale", func() bool { return staleSince("runtime") > 0 })
	if v := staleSince("kubelet"); v != 0 {
		t.Errorf("the kubelet's view is stale too (since %v)", v)
	}
	for collector, want := range map[string]float64{"nvml": 1, "pods": 1, "modelserver": 1} {
		if v := a.metric(t, "headroom_collector_success", map[string]string{"collector": collector}); v != want {
			t.Errorf("collector %s success = %v with the runtime down, want %v", collector, v, want)
		}
	}
	if a.metric(t, "headroom_pod_info", podInfo) != 1 || a.metric(t, "headroom_container_gpu_memory_used_bytes", map[string]string{"pod": "llm-a"}) == 0 {
		t.Error("the runtime's last view was dropped: llm-a lost its identity or its GPU memory")
	}
	seq := latest(p).GetSequence()
	eventually(t, "newer reports with both pods", func() bool {
		r := latest(p)
		return r.GetSequence() > seq && podIn(r, "llm-b").GetIp() == n.b.ip && freshReadings(r, "llm-a", "llm-b")
	})
	eventually(t, "a decision by fresh telemetry", func() bool { _, fresh := byTelemetry(t, p); return fresh })

	if err := n.runtime.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the runtime's view fresh again", func() bool { return staleSince("runtime") == 0 })
}

// TestModelServerHangs makes llm-b's /metrics accept and never answer:
// its reading turns stale (the last values kept) while llm-a's keep
// coming and the model-server collector keeps succeeding; the picker
// routes around llm-b, and back to it once it answers again.
func TestModelServerHangs(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	p := n.picker(t)
	a := n.startAgent(t, p, nil)
	eventually(t, "both pods' readings", func() bool { return freshReadings(latest(p), "llm-a", "llm-b") })

	n.b.hang.Store(true)
	eventually(t, "llm-b's reading marked stale", func() bool { return podIn(latest(p), "llm-b").GetModelServer().GetStale() })
	sampled := podIn(latest(p), "llm-a").GetModelServer().GetSampleTimeUnixNano()
	eventually(t, "newer readings of llm-a", func() bool {
		ms := podIn(latest(p), "llm-a").GetModelServer()
		return !ms.GetStale() && ms.GetSampleTimeUnixNano() > sampled
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"headroom_collector_success", map[string]string{"collector": "modelserver"}, 1},
		{"headroom_modelserver_scrape_success", map[string]string{"pod": "llm-a"}, 1},
		{"headroom_modelserver_scrape_success", map[string]string{"pod": "llm-b"}, 0},
		{"headroom_modelserver_requests_waiting", map[string]string{"pod": "llm-b"}, 5}, // the last good reading
	} {
		if v := a.metric(t, c.name, c.labels); v != c.want {
			t.Errorf("%s%v = %v while llm-b hangs, want %v", c.name, c.labels, v, c.want)
		}
	}
	eventually(t, "the picker to stop sending to llm-b", func() bool {
		r, fresh := byTelemetry(t, p)
		return fresh && slices.Equal(r.dest, []string{n.a.endpoint()})
	})
	onlyTo(t, p, n.a.endpoint(), "llm-b's model server hanging")

	n.b.hang.Store(false)
	eventually(t, "llm-b's reading fresh again", func() bool { return freshReadings(latest(p), "llm-a", "llm-b") })
	eventually(t, "requests to reach llm-b again", func() bool {
		r, fresh := byTelemetry(t, p)
		return fresh && r.first() == n.b.endpoint()
	})
}
