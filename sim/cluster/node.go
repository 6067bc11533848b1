//go:build cgo

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/energy"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/sim/kubenode"
	"github.com/headroom-dev/headroom/sim/modelsim"
)

// Node is one simulated GPU node: its GPUs, its model servers (one pod
// per GPU), its fake kubelet and runtime, and its agent.
type Node struct {
	Name    string
	Index   int
	GPUs    *gpusim.Server
	Servers []*Server
	Agent   *agent.Agent

	dir     string
	kubelet *kubenode.Kubelet
	runtime *kubenode.Runtime
	tree    *kubenode.Tree
	o       Options

	mu          sync.Mutex
	agentCancel context.CancelFunc
	agentDone   chan error
}

func startNode(ctx context.Context, c *Cluster, i int, spec NodeSpec) (*Node, error) {
	sim, err := gpusim.New(gpusim.Options{Profile: spec.System, Seed: c.o.Seed + uint64(i), ThermalTimeConstant: 3 * time.Second})
	if err != nil {
		return nil, err
	}
	// One model-server process per GPU holding most of its memory.
	sim.Populate(1, c.o.Seed+uint64(i))
	dir, err := os.MkdirTemp("", "headroom-node")
	if err != nil {
		return nil, err
	}
	n := &Node{Name: fmt.Sprintf("node-%d", i), Index: i, GPUs: sim, dir: dir, o: c.o,
		kubelet: kubenode.NewKubelet(filepath.Join(dir, "kubelet.sock")),
		runtime: kubenode.NewRuntime(filepath.Join(dir, "containerd.sock"))}
	if n.tree, err = kubenode.NewTree(dir); err != nil {
		n.stop()
		return nil, err
	}
	gpus := spec.GPUs
	if gpus == 0 || gpus > sim.NumGPUs() {
		gpus = sim.NumGPUs()
	}
	for g := range gpus {
		s, err := n.startServer(ctx, c, g, spec)
		if err != nil {
			n.stop()
			return nil, err
		}
		n.Servers = append(n.Servers, s)
	}
	if err := errors.Join(n.kubelet.Start(), n.runtime.Start()); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// startServer starts the model server on GPU g at 127.0.<node+1>.<g+10>
// (on the cluster's shared port, if any) and registers its pod with the
// kubelet, the runtime and the /proc tree.
func (n *Node) startServer(ctx context.Context, c *Cluster, g int, spec NodeSpec) (*Server, error) {
	name := fmt.Sprintf("vllm-%d-%d", n.Index, g)
	ip := serverIP(n.Index, g)
	addr := net.JoinHostPort(ip, strconv.Itoa(c.port))
	s := &Server{Name: name, Node: n, GPU: g, Class: spec.Server, hook: &gpuLoad{sim: n.GPUs, gpu: g}}
	s.slowdown.Store(1.0)
	if c.o.Backend != nil {
		stop, err := c.o.Backend.Start(ctx, BackendServer{Name: name, Class: spec.Server, Model: n.o.Model, Addr: addr,
			Node: n.Index, GPU: g, LoRAs: spec.LoRAs, MaxLoRAs: max(spec.MaxLoRAs, 1), Seed: n.o.Seed*1000 + uint64(100*n.Index+g)})
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, c.o.Backend.Name(), err)
		}
		s.Addr, s.stopExternal = addr, stop
		s.capacity = func(p, o float64) float64 { return c.o.Backend.Capacity(spec.Server, p, o) }
		return s, n.addPod(s, ip, c.port)
	}
	prof, _ := modelsim.LookupProfile(spec.Server) // validated
	ms, err := modelsim.New(modelsim.Options{Name: name, Model: n.o.Model, Profile: prof, FlushInterval: n.o.FlushInterval, GPU: s.hook,
		LoRAs: spec.LoRAs, MaxLoRAs: spec.MaxLoRAs})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (needs Linux, which routes all of 127/8 to loopback): %w", addr, err)
	}
	s.Server, s.Addr, s.Profile = ms, ln.Addr().String(), prof
	s.capacity = prof.Capacity
	s.http, s.done = &http.Server{Handler: ms.Handler(), ReadHeaderTimeout: 10 * time.Second}, make(chan struct{}, 2)
	go func() { _ = s.http.Serve(ln); s.done <- struct{}{} }()
	go func() { _ = ms.Run(ctx); s.done <- struct{}{} }()
	return s, n.addPod(s, ip, ln.Addr().(*net.TCPAddr).Port)
}

func (n *Node) addPod(s *Server, ip string, port int) error {
	uid := fmt.Sprintf("de300000-0000-4000-8000-%06d%06d", n.Index, s.GPU)
	app, proxy := fmt.Sprintf("%032x%032x", n.Index+1, 2*s.GPU+1), fmt.Sprintf("%032x%032x", n.Index+1, 2*s.GPU+2)
	n.kubelet.Assign("llm", s.Name, "vllm", "nvidia.com/gpu", n.GPUs.UUID(s.GPU))
	n.kubelet.Assign("llm", s.Name, "istio-proxy", "")
	n.runtime.AddPod(uid, "llm", s.Name, ip, map[string]string{"vllm": app, "istio-proxy": proxy})
	n.runtime.SetPodMeta(uid, map[string]string{"app": "vllm", "inference.networking.k8s.io/engine-type": "vllm"},
		map[string]string{"headroom.dev/metrics-port": strconv.Itoa(port)})
	if err := n.tree.AddContainer(uid, app, 4<<30, 1<<30, 4<<30, 100); err != nil {
		return err
	}
	if err := n.tree.AddContainer(uid, proxy, 64<<20, 8<<20, 56<<20, 5); err != nil {
		return err
	}
	for _, p := range n.GPUs.Processes(s.GPU) {
		if err := n.tree.AddProcess(p.PID, uid, app); err != nil {
			return err
		}
	}
	return nil
}

// startAgent starts the node's agent, streaming to ingest (insecure, on
// loopback) when it is not empty.
func (n *Node) startAgent(ctx context.Context, ingest string) error {
	ao := agent.DefaultOptions()
	ao.NodeName, ao.ListenAddress, ao.Interval = n.Name, "127.0.0.1:0", n.o.AgentInterval
	po, mo := pods.DefaultOptions(), modelserver.DefaultOptions()
	po.KubeletSocket, po.RuntimeSocket, po.Refresh = n.kubelet.Socket(), n.runtime.Socket(), 2*time.Second
	mo.Interval = 100 * time.Millisecond
	ao.Host = collector.Host{ProcRoot: n.tree.Proc, CgroupRoot: n.tree.Cgroup}
	ao.Collectors = collector.Table{nvml.Entry(gonvml.FromInterface(n.GPUs)), pods.Entry(po), modelserver.Entry(mo), energy.Entry()}
	ao.Stream.Addresses, ao.Stream.Insecure, ao.Stream.MaxBackoff = ingest, ingest != "", time.Second
	actx, cancel := context.WithCancel(ctx)
	a, err := agent.New(actx, ao, n.o.Logger.With("node", n.Name))
	if err != nil {
		cancel()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	n.mu.Lock()
	n.Agent, n.agentCancel, n.agentDone = a, cancel, done
	n.mu.Unlock()
	return nil
}

// StopAgent stops the node's agent: the pickers' view of the node goes
// stale while its servers keep serving.
func (n *Node) StopAgent() {
	n.mu.Lock()
	cancel, done := n.agentCancel, n.agentDone
	n.agentCancel, n.agentDone = nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (n *Node) stop() {
	n.StopAgent()
	for _, s := range n.Servers {
		s.stop()
	}
	n.kubelet.Stop()
	n.runtime.Stop()
	_ = os.RemoveAll(n.dir)
}
