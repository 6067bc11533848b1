package cri

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeRuntime serves the generated CRI RuntimeService on a real unix
// socket, answering the three calls the client makes.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	mu         sync.Mutex
	sandboxes  []*runtimeapi.PodSandbox
	ips        map[string]string
	containers []*runtimeapi.Container
	statusCall atomic.Int32

	socket string
	srv    *grpc.Server
}

func newFakeRuntime(t *testing.T) *fakeRuntime {
	t.Helper()
	dir, err := os.MkdirTemp("", "cri")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeRuntime{socket: filepath.Join(dir, "containerd.sock"), ips: map[string]string{}}
	f.start(t)
	t.Cleanup(f.stop)
	return f
}

func (f *fakeRuntime) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(f.srv, f)
	go func() { _ = f.srv.Serve(ln) }()
}

func (f *fakeRuntime) stop() { f.srv.Stop(); _ = os.Remove(f.socket) }

func (f *fakeRuntime) addPod(uid, ns, name, ip string, state runtimeapi.PodSandboxState, ctrs ...*runtimeapi.Container) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "sb-" + uid
	f.sandboxes = append(f.sandboxes, &runtimeapi.PodSandbox{Id: id, State: state,
		Metadata: &runtimeapi.PodSandboxMetadata{Uid: uid, Namespace: ns, Name: name}})
	f.ips[id] = ip
	for _, c := range ctrs {
		c.PodSandboxId = id
		f.containers = append(f.containers, c)
	}
}

func (f *fakeRuntime) removePod(uid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, sb := range f.sandboxes {
		if sb.GetMetadata().GetUid() == uid {
			f.sandboxes = append(f.sandboxes[:i], f.sandboxes[i+1:]...)
			return
		}
	}
}

func ctr(id, name string, state runtimeapi.ContainerState) *runtimeapi.Container {
	return &runtimeapi.Container{Id: id, State: state, Metadata: &runtimeapi.ContainerMetadata{Name: name}}
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for _, sb := range f.sandboxes {
		if st := r.GetFilter().GetState(); st == nil || st.GetState() == sb.GetState() {
			out = append(out, sb)
		}
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	f.statusCall.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	ip, ok := f.ips[r.GetPodSandboxId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such sandbox")
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{Id: r.GetPodSandboxId(),
		Network: &runtimeapi.PodSandboxNetworkStatus{Ip: ip}}}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if st := r.GetFilter().GetState(); st == nil || st.GetState() == c.GetState() {
			out = append(out, c)
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func testClient(t *testing.T, f *fakeRuntime) *Client {
	t.Helper()
	o := DefaultOptions()
	o.Socket = f.socket
	c, err := New(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

const running, exited = runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED

func TestViewOfPodsAndContainers(t *testing.T) {
	t.Parallel()
	f := newFakeRuntime(t)
	f.addPod("uid-vllm", "llm", "vllm-0", "10.0.0.5", runtimeapi.PodSandboxState_SANDBOX_READY,
		ctr("c-vllm", "vllm", running), ctr("c-proxy", "istio-proxy", running), ctr("c-init", "init", exited))
	f.addPod("uid-host", "kube-system", "exporter", "", runtimeapi.PodSandboxState_SANDBOX_READY, ctr("c-exp", "exporter", running))
	f.addPod("uid-gone", "llm", "old", "10.0.0.9", runtimeapi.PodSandboxState_SANDBOX_NOTREADY, ctr("c-old", "vllm", running))

	c := testClient(t, f)
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
}

func TestSandboxStatusOncePerSandbox(t *testing.T) {
	t.Parallel()
	f := newFakeRuntime(t)
	f.addPod("a", "ns", "a", "10.0.0.1", runtimeapi.PodSandboxState_SANDBOX_READY)
	f.addPod("b", "ns", "b", "10.0.0.2", runtimeapi.PodSandboxState_SANDBOX_READY)
	c := testClient(t, f)
	ctx := context.Background()
	for range 5 {
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.statusCall.Load(); n != 2 {
		t.Errorf("PodSandboxStatus called %d times over 5 refreshes of 2 pods, want 2", n)
	}
	f.removePod("a")
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.ips["sb-a"]; ok {
		t.Error("IP of a removed sandbox still cached")
	}
}

func TestRuntimeRestart(t *testing.T) {
	t.Parallel()
	f := newFakeRuntime(t)
	f.addPod("a", "ns", "a", "10.0.0.1", runtimeapi.PodSandboxState_SANDBOX_READY)
	c := testClient(t, f)
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.View()
	f.stop()
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh succeeded with the runtime down")
	}
	if c.View() != before || c.Status().StaleSince.IsZero() {
		t.Fatal("the last good view must be kept and marked stale")
	}
	f.start(t)
	deadline := time.Now().Add(10 * time.Second)
	for c.Refresh(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect: %v", c.Status().LastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !c.Status().StaleSince.IsZero() {
		t.Error("still stale after the runtime came back")
	}
}
