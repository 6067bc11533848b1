package pods

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/kubenode"
	"github.com/headroom-dev/headroom/snapshot"
)

// benchNode is 110 pods (two containers each) on a node of 8 GPUs with 200
// GPU processes: 8 GPU pods hold a GPU each and run 25 processes apiece.
type benchNode struct {
	src  *Source
	gpus []snapshot.GPU
	kub  *kubenode.Kubelet
}

func newBenchNode(b *testing.B) *benchNode {
	b.Helper()
	dir, err := os.MkdirTemp("", "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	kub := kubenode.NewKubelet(filepath.Join(dir, "k.sock"))
	rt := kubenode.NewRuntime(filepath.Join(dir, "c.sock"))
	tree, err := kubenode.NewTree(dir)
	if err != nil {
		b.Fatal(err)
	}
	gpus := make([]snapshot.GPU, 8)
	for g := range gpus {
		gpus[g] = snapshot.GPU{Index: g, UUID: fmt.Sprintf("GPU-%08d-0000-4000-8000-000000000000", g)}
	}
	for p := range 110 {
		uid := fmt.Sprintf("%08d-0000-4000-8000-000000000000", p)
		app, proxy := fmt.Sprintf("%064x", 2*p+1), fmt.Sprintf("%064x", 2*p+2)
		name := fmt.Sprintf("pod-%d", p)
		rt.AddPod(uid, "ns", name, fmt.Sprintf("10.0.%d.%d", p/250, p%250+1), map[string]string{"app": app, "istio-proxy": proxy})
		if err := tree.AddContainer(uid, app, 1<<30, 0, 1<<30, 1); err != nil {
			b.Fatal(err)
		}
		if err := tree.AddContainer(uid, proxy, 80<<20, 0, 80<<20, 1); err != nil {
			b.Fatal(err)
		}
		if p >= len(gpus) {
			continue
		}
		kub.Assign("ns", name, "app", "nvidia.com/gpu", gpus[p].UUID)
		for k := range 25 {
			pid := uint32(10000 + p*100 + k)
			if err := tree.AddProcess(pid, uid, app); err != nil {
				b.Fatal(err)
			}
			gpus[p].Processes = append(gpus[p].Processes, snapshot.Process{PID: pid, UsedMemory: 1 << 30, MIGInstance: -1})
		}
	}
	for _, start := range []func() error{kub.Start, rt.Start} {
		if err := start(); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(kub.Stop)
	b.Cleanup(rt.Stop)
	o := DefaultOptions()
	o.KubeletSocket, o.RuntimeSocket, o.Refresh = kub.Socket(), rt.Socket(), time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	src, err := New(ctx, o, collector.Host{ProcRoot: tree.Proc, CgroupRoot: tree.Cgroup}, testutil.Logger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = src.Close() })
	for src.kubelet.View() == nil || src.runtime.View() == nil {
		time.Sleep(time.Millisecond)
	}
	return &benchNode{src: src, gpus: gpus, kub: kub}
}

// sample runs one tick: Collect, then its enrich step on a fresh snapshot.
func (n *benchNode) sample(b *testing.B) *snapshot.Attribution {
	ctx := context.Background()
	r, err := n.src.Collect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	snap := &snapshot.Snapshot{GPUs: n.gpus}
	part, err := r.Enrich(ctx, snap)
	if err != nil {
		b.Fatal(err)
	}
	part(snap)
	return snap.Attribution
}

// BenchmarkRefresh is one refresh of each cached view: pod-resources List
// and GetAllocatableResources, and the runtime's ListPodSandbox and
// ListContainers (IPs cached), for 110 pods.
func BenchmarkRefresh(b *testing.B) {
	n := newBenchNode(b)
	ctx := context.Background()
	b.Run("kubelet", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := n.src.kubelet.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("runtime", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := n.src.runtime.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSample is the attribution work of one sampling tick: cgroup
// reads for the GPU pods' containers and the join of 200 processes, with
// the PID cache warm (the steady state) and cold (every PID new).
func BenchmarkSample(b *testing.B) {
	n := newBenchNode(b)
	if a := n.sample(b); len(a.Pods) != 8 || a.UnattributedProcesses != 0 {
		b.Fatalf("setup: %d GPU pods, %d unattributed", len(a.Pods), a.UnattributedProcesses)
	}
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n.sample(b)
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n.src.mu.Lock()
			clear(n.src.pids)
			n.src.mu.Unlock()
			n.sample(b)
		}
	})
}
