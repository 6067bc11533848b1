//go:build cgo

package agent_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/sim/kubenode"
)

// node is a simulated GPU node: GPUs, kubelet, runtime and /proc+cgroup.
type node struct {
	sim     *gpusim.Server
	kubelet *kubenode.Kubelet
	runtime *kubenode.Runtime
	tree    *kubenode.Tree
}

const (
	uidVLLM, uidA, uidB = "11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002", "11111111-0000-4000-8000-000000000003"
	gib                 = uint64(1) << 30
)

var (
	cVLLM, cProxy, cA, cB = strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64), strings.Repeat("d", 64)
)

// newNode lays out: vllm-0 (vllm + istio-proxy) on GPU 0; small-a and
// small-b time-sliced on GPU 1; a host process (not in Kubernetes) on GPU 2.
func newNode(t *testing.T) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "node")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sim, err := gpusim.New(gpusim.Options{Profile: "dgxh100", Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetProcesses(0, []gpusim.Process{{PID: 10000, VRAM: 70 * gib, MIGInstance: -1}})
	sim.SetProcesses(1, []gpusim.Process{{PID: 11000, VRAM: 10 * gib, MIGInstance: -1}, {PID: 11001, VRAM: 12 * gib, MIGInstance: -1}})
	sim.SetProcesses(2, []gpusim.Process{{PID: 12000, VRAM: gib, MIGInstance: -1}})

	n := &node{sim: sim, kubelet: kubenode.NewKubelet(filepath.Join(dir, "kubelet.sock")), runtime: kubenode.NewRuntime(filepath.Join(dir, "containerd.sock"))}
	n.kubelet.Assign("llm", "vllm-0", "vllm", "nvidia.com/gpu", sim.UUID(0))
	n.kubelet.Assign("llm", "vllm-0", "istio-proxy", "")
	n.kubelet.Assign("llm", "small-a", "srv", "nvidia.com/gpu", sim.UUID(1)+"::0")
	n.kubelet.Assign("llm", "small-b", "srv", "nvidia.com/gpu", sim.UUID(1)+"::1")
	n.runtime.AddPod(uidVLLM, "llm", "vllm-0", "10.0.0.10", map[string]string{"vllm": cVLLM, "istio-proxy": cProxy})
	n.runtime.AddPod(uidA, "llm", "small-a", "10.0.0.11", map[string]string{"srv": cA})
	n.runtime.AddPod(uidB, "llm", "small-b", "10.0.0.12", map[string]string{"srv": cB})
	for _, s := range []*struct{ start func() error }{{n.kubelet.Start}, {n.runtime.Start}} {
		if err := s.start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(n.kubelet.Stop)
	t.Cleanup(n.runtime.Stop)

	if n.tree, err = kubenode.NewTree(dir); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(n.tree.AddContainer(uidVLLM, cVLLM, 6*gib, gib, 5*gib, 3600))
	must(n.tree.AddContainer(uidVLLM, cProxy, 90<<20, 10<<20, 80<<20, 12.5))
	must(n.tree.AddContainer(uidA, cA, 2*gib, 0, 2*gib, 10))
	must(n.tree.AddContainer(uidB, cB, 3*gib, 0, 3*gib, 20))
	must(n.tree.AddProcess(10000, uidVLLM, cVLLM))
	must(n.tree.AddProcess(11000, uidA, cA))
	must(n.tree.AddProcess(11001, uidB, cB))
	must(n.tree.AddProcess(12000, "", ""))
	return n
}

// options are the test options with the built-in table reading the
// node: its simulated GPUs, its kubelet and runtime every refresh, its
// /proc and cgroup tree.
func (n *node) options(refresh time.Duration) agent.Options {
	o := simulated(testOptions(), n.sim)
	po := pods.DefaultOptions()
	po.KubeletSocket, po.RuntimeSocket, po.Refresh = n.kubelet.Socket(), n.runtime.Socket(), refresh
	o.Collectors = o.Collectors.With(pods.Entry(po))
	o.Host = collector.Host{ProcRoot: n.tree.Proc, CgroupRoot: n.tree.Cgroup}
	return o
}

// modelServerOptions returns the options of o's modelserver collector.
func modelServerOptions(t *testing.T, o agent.Options) *modelserver.Options {
	t.Helper()
	mo, ok := collector.OptionsOf[*modelserver.Options](o.Collectors, modelserver.Name)
	if !ok {
		t.Fatal("no modelserver collector in the table")
	}
	return mo
}

// waitMetrics scrapes until every wanted line is there.
func waitMetrics(t *testing.T, a *agent.Agent, want ...string) string {
	t.Helper()
	var body string
	testutil.Until(t, 15*time.Second, 50*time.Millisecond, func() error {
		_, body = get(t, a, "/metrics")
		for _, w := range want {
			if !strings.Contains(body, w) {
				return fmt.Errorf("/metrics lacks %q; its headroom lines:\n%s", w, grepHeadroom(body))
			}
		}
		return nil
	})
	return body
}

func grepHeadroom(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "headroom_") && !strings.HasPrefix(l, "headroom_gpu_clock") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestAttributionEndToEnd(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := start(t, n.options(time.Second))
	u0, u1 := n.sim.UUID(0), n.sim.UUID(1)
	body := waitMetrics(t, a,
		`headroom_collector_success{collector="pods"} 1`,
		fmt.Sprintf(`headroom_gpu_owner_info{container="srv",gpu="1",namespace="llm",node="node-a",pod="small-a",uuid="%s"} 1`, u1),
		fmt.Sprintf(`headroom_gpu_owner_info{container="srv",gpu="1",namespace="llm",node="node-a",pod="small-b",uuid="%s"} 1`, u1),
		fmt.Sprintf(`headroom_container_gpu_memory_used_bytes{container="vllm",gpu="0",namespace="llm",node="node-a",pod="vllm-0",uuid="%s"} %g`, u0, float64(70*gib)),
		fmt.Sprintf(`headroom_container_gpu_memory_used_bytes{container="srv",gpu="1",namespace="llm",node="node-a",pod="small-b",uuid="%s"} %g`, u1, float64(12*gib)),
		fmt.Sprintf(`headroom_container_gpu_contexts{container="srv",gpu="1",namespace="llm",node="node-a",pod="small-a",uuid="%s"} 1`, u1),
		`headroom_container_memory_working_set_bytes{container="istio-proxy",namespace="llm",node="node-a",pod="vllm-0",sidecar="true"} 9.437184e+07`,
		`headroom_container_cpu_seconds_total{container="istio-proxy",namespace="llm",node="node-a",pod="vllm-0",sidecar="true"} 12.5`,
		fmt.Sprintf(`headroom_container_memory_working_set_bytes{container="vllm",namespace="llm",node="node-a",pod="vllm-0",sidecar="false"} %g`, float64(6*gib)),
		`headroom_pod_info{ip="10.0.0.11",namespace="llm",node="node-a",pod="small-a",uid="`+uidA+`"} 1`,
		`headroom_mesh_vram_bytes{node="node-a"} 0`,
		`headroom_gpu_unattributed_processes{node="node-a"} 1`,
		`pid="10000",pod="vllm-0",uuid="`+u0+`"}`,
		`headroom_attribution_stale_since_timestamp_seconds{node="node-a",source="kubelet"} 0`,
	)
	// GPU-wide metrics name the single owner, and no one for a shared GPU.
	for _, want := range []string{
		fmt.Sprintf(`headroom_gpu_memory_used_bytes{container="vllm",gpu="0",model="NVIDIA H100 80GB HBM3",namespace="llm",node="node-a",pod="vllm-0",uuid="%s"}`, u0),
		fmt.Sprintf(`headroom_gpu_memory_used_bytes{container="",gpu="1",model="NVIDIA H100 80GB HBM3",namespace="",node="node-a",pod="",uuid="%s"}`, u1),
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The host process on GPU 2 stays unattributed but keeps its VRAM series.
	if !strings.Contains(body, `container="",gpu="2",mig_instance="",model="NVIDIA H100 80GB HBM3",namespace="",node="node-a",pid="12000",pod=""`) {
		t.Errorf("host process series missing:\n%s", grepHeadroom(body))
	}
}

func TestKubeletRestartKeepsGPUMetrics(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := start(t, n.options(time.Second))
	waitMetrics(t, a, `headroom_collector_success{collector="pods"} 1`, `pod="small-a"`)

	n.kubelet.Stop()
	var body string
	testutil.Until(t, 15*time.Second, 100*time.Millisecond, func() error {
		_, body = get(t, a, "/metrics")
		if !strings.Contains(body, `headroom_collector_success{collector="nvml"} 1`) ||
			strings.Contains(body, `headroom_attribution_stale_since_timestamp_seconds{node="node-a",source="kubelet"} 0`) {
			return errors.New("kubelet down but attribution not marked stale")
		}
		return nil
	})
	for _, want := range []string{`headroom_gpu_memory_used_bytes{container="vllm",gpu="0"`, `pod="small-a"`, `headroom_collector_success{collector="pods"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("with the kubelet down, /metrics lost %q", want)
		}
	}
	if err := n.kubelet.Start(); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, a, `headroom_attribution_stale_since_timestamp_seconds{node="node-a",source="kubelet"} 0`)
}

func TestScrapesMakeNoKubeletOrRuntimeCall(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := start(t, n.options(time.Hour))
	waitMetrics(t, a, `headroom_collector_success{collector="pods"} 1`)
	kubelet, runtime := n.kubelet.Calls(), n.runtime.Calls()
	if kubelet == 0 || runtime == 0 {
		t.Fatal("the views were never fetched; the counters are not counting")
	}
	for range 20 {
		get(t, a, "/metrics")
	}
	if k, r := n.kubelet.Calls()-kubelet, n.runtime.Calls()-runtime; k != 0 || r != 0 {
		t.Errorf("20 scrapes made %d kubelet and %d runtime calls, want 0", k, r)
	}
}

// TestDeletedPodLeavesTheMetrics bounds cardinality: a pod that is gone
// from the node is gone from /metrics after one refresh.
func TestDeletedPodLeavesTheMetrics(t *testing.T) {
	t.Parallel()
	n := newNode(t)
	a := start(t, n.options(time.Second))
	waitMetrics(t, a, `pod="small-b"`)

	n.sim.SetProcesses(1, []gpusim.Process{{PID: 11000, VRAM: 10 * gib, MIGInstance: -1}})
	n.runtime.RemovePod(uidB)
	n.kubelet.Reset()
	n.kubelet.Assign("llm", "vllm-0", "vllm", "nvidia.com/gpu", n.sim.UUID(0))
	n.kubelet.Assign("llm", "small-a", "srv", "nvidia.com/gpu", n.sim.UUID(1)+"::0")

	var body string
	testutil.Until(t, 15*time.Second, 100*time.Millisecond, func() error {
		_, body = get(t, a, "/metrics")
		if strings.Contains(body, `pod="small-b"`) {
			return errors.New("deleted pod still in /metrics (refresh interval 1 s)")
		}
		return nil
	})
	if !strings.Contains(body, `pod="small-a"`) {
		t.Fatal("the remaining pods went with it")
	}
}
