//go:build cgo

package faults

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/picker/app"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/sim/kubenode"
)

const (
	nodeName = "gpu-node-1"
	gib      = uint64(1) << 30
)

// servedPod is one model-server pod of the simulated node: its own GPU,
// its own loopback IP, and a vLLM /metrics server there that a test can
// make hang.
type servedPod struct {
	name, uid, container, ip string
	gpu                      int
	server                   *httptest.Server
	hang                     atomic.Bool
}

// endpoint is the pod's serving address, as the picker routes to it.
func (p *servedPod) endpoint() string { return p.ip + ":8000" }

// node is a simulated GPU node (dgxh100) with a kubelet, a container
// runtime, a /proc and cgroup tree, and two model-server pods: llm-a on
// GPU 0 at 127.0.0.1 and llm-b on GPU 1 at 127.0.0.2.
type node struct {
	sim     *gpusim.Server
	kubelet *kubenode.Kubelet
	runtime *kubenode.Runtime
	tree    *kubenode.Tree
	a, b    *servedPod
}

func newNode(t *testing.T) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "faults") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sim, err := gpusim.New(gpusim.Options{Profile: "dgxh100", Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{sim: sim,
		kubelet: kubenode.NewKubelet(filepath.Join(dir, "kubelet.sock")),
		runtime: kubenode.NewRuntime(filepath.Join(dir, "containerd.sock")),
		a:       &servedPod{name: "llm-a", uid: "22222222-0000-4000-8000-00000000000a", container: strings.Repeat("a", 64), ip: "127.0.0.1", gpu: 0},
		b:       &servedPod{name: "llm-b", uid: "22222222-0000-4000-8000-00000000000b", container: strings.Repeat("b", 64), ip: "127.0.0.2", gpu: 1},
	}
	if n.tree, err = kubenode.NewTree(dir); err != nil {
		t.Fatal(err)
	}
	for i, p := range []*servedPod{n.a, n.b} {
		p.server = startModelServer(t, p)
		_, port, _ := net.SplitHostPort(p.server.Listener.Addr().String())
		pid := uint32(10000 + i)
		sim.SetProcesses(p.gpu, []gpusim.Process{{PID: pid, VRAM: 60 * gib, MIGInstance: -1}})
		sim.SetLoad(p.gpu, 0.5)
		n.kubelet.Assign("llm", p.name, "vllm", "nvidia.com/gpu", sim.UUID(p.gpu))
		n.runtime.AddPod(p.uid, "llm", p.name, p.ip, map[string]string{"vllm": p.container})
		n.runtime.SetPodMeta(p.uid, map[string]string{"inference.networking.k8s.io/engine-type": "vllm"},
			map[string]string{"headroom.dev/metrics-port": port})
		if err := n.tree.AddContainer(p.uid, p.container, 4*gib, gib, 3*gib, 100); err != nil {
			t.Fatal(err)
		}
		if err := n.tree.AddProcess(pid, p.uid, p.container); err != nil {
			t.Fatal(err)
		}
	}
	for _, start := range []func() error{n.kubelet.Start, n.runtime.Start} {
		if err := start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(n.kubelet.Stop)
	t.Cleanup(n.runtime.Stop)
	return n
}

// startModelServer serves the vLLM fixture on the pod's IP until the test
// ends; while p.hang is set it answers nothing until the scraper gives up.
func startModelServer(t *testing.T, p *servedPod) *httptest.Server {
	t.Helper()
	body, err := os.ReadFile("../../collector/modelserver/testdata/vllm.prom")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", p.ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.hang.Load() {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(body)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

// routing is the picker the node's agent streams to, routing to the two
// pods.
//
// Its reports expire after 10 of the agent's 100 ms intervals, not the
// default 3: on a loaded two-core machine under the race detector the
// agent can miss 300 ms, and these tests are about what a fresh report
// says, not about expiry (TestAllTelemetryStale is).
func (n *node) picker(t *testing.T) *picker {
	return startPicker(t, func(o *app.Options) {
		o.Pool.Endpoints = n.a.endpoint() + "," + n.b.endpoint()
		o.TTLIntervals = 10
	})
}

// runningAgent is an agent run until the end of the test.
type runningAgent struct {
	*agent.Agent
	addr string
}

// startAgent runs the node's agent, sampling every 100 ms, scraping the
// model servers every 50 ms and streaming to p. gpu is its NVML library
// (nil: the node's simulated GPUs). DCGM is left out: there is none.
func (n *node) startAgent(t *testing.T, p *picker, gpu nvml.Library) *runningAgent {
	t.Helper()
	if gpu == nil {
		gpu = gonvml.FromInterface(n.sim)
	}
	o := agent.DefaultOptions()
	o.NodeName, o.ListenAddress, o.Interval = nodeName, "127.0.0.1:0", 100*time.Millisecond
	po, mo := pods.DefaultOptions(), modelserver.DefaultOptions()
	po.KubeletSocket, po.RuntimeSocket, po.Refresh = n.kubelet.Socket(), n.runtime.Socket(), time.Second
	mo.Interval, mo.Timeout = 50*time.Millisecond, time.Second
	o.Collectors = collector.Table{nvml.Entry(gpu), pods.Entry(po), modelserver.Entry(mo)}
	o.Host = collector.Host{ProcRoot: n.tree.Proc, CgroupRoot: n.tree.Cgroup}
	o.Stream.Addresses, o.Stream.Insecure, o.Stream.MaxBackoff = p.IngestAddr().String(), true, 200*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, o, testutil.Logger())
	if err != nil {
		cancel()
		t.Fatalf("agent: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent Run: %v", err)
			}
		case <-time.After(patience):
			t.Errorf("agent did not stop within %s", patience)
		}
	})
	return &runningAgent{Agent: a, addr: a.Addr().String()}
}

// get fetches one of the agent's HTTP endpoints.
func (a *runningAgent) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.addr + path)
	if err != nil {
		t.Fatalf("agent %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// metric reads one of the agent's series (see the package's metric).
func (a *runningAgent) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return metric(t, a.addr, name, labels)
}

// latest is the node's newest report held by the picker (nil: none yet).
func latest(p *picker) *telemetryv1.NodeReport {
	v, ok := p.Store().Node(nodeName)
	if !ok {
		return nil
	}
	return v.Report
}

// podIn returns the named pod of r, or nil.
func podIn(r *telemetryv1.NodeReport, name string) *telemetryv1.Pod {
	for _, p := range r.GetPods() {
		if p.GetName() == name {
			return p
		}
	}
	return nil
}

// gpuIn returns GPU index i of r, or nil.
func gpuIn(r *telemetryv1.NodeReport, i int) *telemetryv1.GPU {
	for _, g := range r.GetGpus() {
		if int(g.GetIndex()) == i {
			return g
		}
	}
	return nil
}

// freshReadings reports whether r carries a fresh model-server reading
// for every named pod.
func freshReadings(r *telemetryv1.NodeReport, names ...string) bool {
	for _, n := range names {
		ms := podIn(r, n).GetModelServer()
		if ms == nil || ms.GetStale() || ms.GetSampleTimeUnixNano() == 0 {
			return false
		}
	}
	return true
}
