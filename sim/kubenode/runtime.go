package kubenode

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime serves the three CRI RuntimeService calls the agent makes.
type Runtime struct {
	runtimeapi.UnimplementedRuntimeServiceServer

	mu         sync.Mutex
	sandboxes  []*runtimeapi.PodSandbox
	ips        map[string]string
	containers []*runtimeapi.Container
	calls      atomic.Int64

	socket string
	srv    *grpc.Server
}

// NewRuntime returns a runtime that will serve on socket.
func NewRuntime(socket string) *Runtime { return &Runtime{socket: socket, ips: map[string]string{}} }

// Socket is the socket path.
func (r *Runtime) Socket() string { return r.socket }

// Start listens on the socket, replacing a stale one.
func (r *Runtime) Start() error {
	_ = os.Remove(r.socket)
	ln, err := net.Listen("unix", r.socket)
	if err != nil {
		return fmt.Errorf("runtime socket: %w", err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, r)
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// Stop stops serving and removes the socket.
func (r *Runtime) Stop() {
	r.mu.Lock()
	srv := r.srv
	r.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
	_ = os.Remove(r.socket)
}

// AddPod adds a ready pod with running containers (name → ID).
func (r *Runtime) AddPod(uid, namespace, name, ip string, containers map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := "sandbox-" + uid
	r.sandboxes = append(r.sandboxes, &runtimeapi.PodSandbox{Id: id, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Metadata: &runtimeapi.PodSandboxMetadata{Uid: uid, Namespace: namespace, Name: name}})
	r.ips[id] = ip
	for cname, cid := range containers {
		r.containers = append(r.containers, &runtimeapi.Container{Id: cid, PodSandboxId: id,
			State: runtimeapi.ContainerState_CONTAINER_RUNNING, Metadata: &runtimeapi.ContainerMetadata{Name: cname}})
	}
}

// Calls counts the RPCs served.
func (r *Runtime) Calls() int64 { return r.calls.Load() }

// ListPodSandbox answers the sandboxes matching the state filter.
func (r *Runtime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.PodSandbox
	for _, sb := range r.sandboxes {
		if st := req.GetFilter().GetState(); st == nil || st.GetState() == sb.GetState() {
			out = append(out, sb)
		}
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// PodSandboxStatus answers a sandbox's IP.
func (r *Runtime) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	ip, ok := r.ips[req.GetPodSandboxId()]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such sandbox")
	}
	return &runtimeapi.PodSandboxStatusResponse{Status: &runtimeapi.PodSandboxStatus{Id: req.GetPodSandboxId(),
		Network: &runtimeapi.PodSandboxNetworkStatus{Ip: ip}}}, nil
}

// ListContainers answers the containers matching the state filter.
func (r *Runtime) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	r.calls.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.Container
	for _, c := range r.containers {
		if st := req.GetFilter().GetState(); st == nil || st.GetState() == c.GetState() {
			out = append(out, c)
		}
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}
