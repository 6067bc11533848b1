package podresources

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
	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// fakeKubelet serves the generated PodResourcesLister API on a real unix
// socket, as the kubelet does.
type fakeKubelet struct {
	podresv1.UnimplementedPodResourcesListerServer

	mu          sync.Mutex
	pods        []*podresv1.PodResources
	allocatable []*podresv1.ContainerDevices
	// exhausted makes the next n calls fail with ResourceExhausted.
	exhausted int
	calls     atomic.Int32

	socket string
	srv    *grpc.Server
}

func newFakeKubelet(t *testing.T) *fakeKubelet {
	t.Helper()
	dir, err := os.MkdirTemp("", "kubelet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	k := &fakeKubelet{socket: filepath.Join(dir, "kubelet.sock")}
	k.start(t)
	t.Cleanup(k.stop)
	return k
}

func (k *fakeKubelet) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("unix", k.socket)
	if err != nil {
		t.Fatal(err)
	}
	k.srv = grpc.NewServer()
	podresv1.RegisterPodResourcesListerServer(k.srv, k)
	go func() { _ = k.srv.Serve(ln) }()
}

// stop stops serving and removes the socket, as a kubelet restart does.
func (k *fakeKubelet) stop() {
	k.srv.Stop()
	_ = os.Remove(k.socket)
}

func (k *fakeKubelet) set(pods []*podresv1.PodResources, alloc []*podresv1.ContainerDevices) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pods, k.allocatable = pods, alloc
}

func (k *fakeKubelet) limited() error {
	k.calls.Add(1)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.exhausted > 0 {
		k.exhausted--
		return status.Error(codes.ResourceExhausted, "rejected request: too many requests")
	}
	return nil
}

func (k *fakeKubelet) List(context.Context, *podresv1.ListPodResourcesRequest) (*podresv1.ListPodResourcesResponse, error) {
	if err := k.limited(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return &podresv1.ListPodResourcesResponse{PodResources: k.pods}, nil
}

func (k *fakeKubelet) GetAllocatableResources(context.Context, *podresv1.AllocatableResourcesRequest) (*podresv1.AllocatableResourcesResponse, error) {
	if err := k.limited(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return &podresv1.AllocatableResourcesResponse{Devices: k.allocatable}, nil
}

func testClient(t *testing.T, k *fakeKubelet, mutate func(*Options)) *Client {
	t.Helper()
	o := DefaultOptions()
	o.Socket = k.socket
	o.MinGap, o.MaxBackoff, o.Timeout = 10*time.Millisecond, 80*time.Millisecond, 2*time.Second
	if mutate != nil {
		mutate(&o)
	}
	c, err := New(o, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func pod(ns, name string, ctrs ...*podresv1.ContainerResources) *podresv1.PodResources {
	return &podresv1.PodResources{Namespace: ns, Name: name, Containers: ctrs}
}

func ctr(name, resource string, ids ...string) *podresv1.ContainerResources {
	c := &podresv1.ContainerResources{Name: name}
	if resource != "" {
		c.Devices = []*podresv1.ContainerDevices{{ResourceName: resource, DeviceIds: ids}}
	}
	return c
}
