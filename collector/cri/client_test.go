package cri

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/kubenode"
)

// newRuntime starts the simulated CRI runtime (the generated
// RuntimeService server) on a real unix socket.
func newRuntime(t *testing.T) *kubenode.Runtime {
	t.Helper()
	dir, err := os.MkdirTemp("", "cri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := kubenode.NewRuntime(filepath.Join(dir, "containerd.sock"))
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

func testClient(t *testing.T, r *kubenode.Runtime) *Client {
	t.Helper()
	o := DefaultOptions()
	o.Socket = r.Socket()
	c, err := New(o, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestViewOfPodsAndContainers(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	r.AddSandbox("uid-vllm", "llm", "vllm-0", "10.0.0.5", true)
	r.AddContainer("uid-vllm", "c-vllm", "vllm", true)
	r.AddContainer("uid-vllm", "c-proxy", "istio-proxy", true)
	r.AddContainer("uid-vllm", "c-init", "init", false)
	r.AddPod("uid-host", "kube-system", "exporter", "", map[string]string{"exporter": "c-exp"})
	r.SetPodMeta("uid-vllm",
		map[string]string{LabelEngineType: "sglang", "app": "llm", "io.kubernetes.pod.uid": "uid-vllm"},
		map[string]string{AnnotationMetricsPort: "30000", AnnotationPromPort: "8000", AnnotationPromPath: "/stats", "kubectl.kubernetes.io/last-applied-configuration": "{}"})
	r.SetPodMeta("uid-host", nil, map[string]string{AnnotationPromPort: "9100"})
	r.AddSandbox("uid-gone", "llm", "old", "10.0.0.9", false)
	r.AddContainer("uid-gone", "c-old", "vllm", true)

	c := testClient(t, r)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := c.View()
	if len(v.Pods) != 2 {
		t.Fatalf("pods = %+v, want the 2 ready ones", v.Pods)
	}
	p, ok := v.Pod("uid-vllm")
	if !ok || p.IP != "10.0.0.5" || p.Namespace != "llm" || p.Name != "vllm-0" || len(p.Containers) != 2 {
		t.Errorf("vllm pod = %+v", p)
	}
	if pod, ctr, ok := v.Container("c-proxy"); !ok || ctr.Name != "istio-proxy" || pod.UID != "uid-vllm" {
		t.Errorf("sidecar lookup: %+v %+v %v", pod, ctr, ok)
	}
	for _, id := range []string{"c-init", "c-old"} {
		if _, _, ok := v.Container(id); ok {
			t.Errorf("%s listed: exited containers and non-ready pods are not", id)
		}
	}
	if p, _ := v.Pod("uid-host"); p.IP != "" {
		t.Errorf("host-network pod IP = %q, want empty", p.IP)
	}
	// Only the model-server keys and the app label (ztunnel's pods carry
	// app: ztunnel) are kept; headroom's port annotation wins over
	// prometheus.io's.
	if want := (Meta{Engine: "sglang", MetricsPort: "30000", MetricsPath: "/stats", App: "llm"}); p.Meta != want {
		t.Errorf("vllm pod meta = %+v, want %+v", p.Meta, want)
	}
	if p, _ := v.Pod("uid-host"); p.Meta != (Meta{MetricsPort: "9100"}) {
		t.Errorf("host pod meta = %+v, want the prometheus.io port", p.Meta)
	}
}

func TestSandboxStatusOncePerSandbox(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	r.AddPod("a", "ns", "a", "10.0.0.1", nil)
	r.AddPod("b", "ns", "b", "10.0.0.2", nil)
	c := testClient(t, r)
	ctx := context.Background()
	for range 5 {
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.StatusCalls(); n != 2 {
		t.Errorf("PodSandboxStatus called %d times over 5 refreshes of 2 pods, want 2", n)
	}
	r.RemovePod("a")
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.ips["sandbox-a"]; ok {
		t.Error("IP of a removed sandbox still cached")
	}
}

// A pod deleted between ListPodSandbox and its PodSandboxStatus is left
// out of the view; the other pods are still listed.
func TestSandboxVanishesBetweenCalls(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	r.AddPod("a", "ns", "a", "10.0.0.1", map[string]string{"main": "c-a"})
	r.AddPod("b", "ns", "b", "10.0.0.2", map[string]string{"main": "c-b"})
	r.VanishAfterList("a")
	c := testClient(t, r)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh failed for a pod that went away: %v", err)
	}
	v := c.View()
	if _, ok := v.Pod("a"); ok {
		t.Error("the vanished pod is in the view")
	}
	if p, ok := v.Pod("b"); !ok || p.IP != "10.0.0.2" || len(p.Containers) != 1 {
		t.Errorf("pod b = %+v, %v; want it with its IP and container", p, ok)
	}
	if _, ok := c.ips["sandbox-a"]; ok {
		t.Error("an IP is cached for the vanished sandbox")
	}
}

func TestRuntimeRestart(t *testing.T) {
	t.Parallel()
	r := newRuntime(t)
	r.AddPod("a", "ns", "a", "10.0.0.1", nil)
	c := testClient(t, r)
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.View()
	r.Stop()
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh succeeded with the runtime down")
	}
	if c.View() != before || c.Status().StaleSince.IsZero() {
		t.Fatal("the last good view must be kept and marked stale")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if err := c.Refresh(ctx); err != nil {
			return fmt.Errorf("no reconnect: %w", err)
		}
		return nil
	})
	if !c.Status().StaleSince.IsZero() {
		t.Error("still stale after the runtime came back")
	}
}
