package kubenode

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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
	statuses   atomic.Int64
	// vanish names pods whose sandbox goes away right after the next
	// ListPodSandbox has listed it (a pod deleted between two CRI calls).
	vanish map[string]bool

	server
}

// NewRuntime returns a runtime that will serve on socket (Start, Stop).
func NewRuntime(socket string) *Runtime {
	r := &Runtime{ips: map[string]string{}, vanish: map[string]bool{}}
	r.server = server{socket: socket, register: func(s *grpc.Server) { runtimeapi.RegisterRuntimeServiceServer(s, r) }}
	return r
}

// AddPod adds a ready pod with running containers (name → ID).
func (r *Runtime) AddPod(uid, namespace, name, ip string, containers map[string]string) {
	r.AddSandbox(uid, namespace, name, ip, true)
	for cname, cid := range containers {
		r.AddContainer(uid, cid, cname, true)
	}
}

// AddSandbox adds a pod sandbox, ready or not, with no containers.
func (r *Runtime) AddSandbox(uid, namespace, name, ip string, ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state := runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	if ready {
		state = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	id := "sandbox-" + uid
	r.sandboxes = append(r.sandboxes, &runtimeapi.PodSandbox{Id: id, State: state,
		Metadata: &runtimeapi.PodSandboxMetadata{Uid: uid, Namespace: namespace, Name: name}})
	r.ips[id] = ip
}

// SetPodMeta sets the labels and annotations of a pod's sandbox, as the
// kubelet copies them from the pod.
func (r *Runtime) SetPodMeta(uid string, labels, annotations map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, sb := range r.sandboxes {
		if sb.GetMetadata().GetUid() == uid {
			// A new message: one already answered may be being marshalled.
			sb = proto.CloneOf(sb)
			sb.Labels, sb.Annotations = labels, annotations
			r.sandboxes[i] = sb
		}
	}
}

// AddContainer adds a running or exited container to a pod's sandbox.
func (r *Runtime) AddContainer(podUID, id, name string, running bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state := runtimeapi.ContainerState_CONTAINER_EXITED
	if running {
		state = runtimeapi.ContainerState_CONTAINER_RUNNING
	}
	r.containers = append(r.containers, &runtimeapi.Container{Id: id, PodSandboxId: "sandbox-" + podUID,
		State: state, Metadata: &runtimeapi.ContainerMetadata{Name: name}})
}

// RemovePod removes a pod's sandbox, as when the pod is deleted.
func (r *Runtime) RemovePod(uid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.removeLocked(uid)
}

func (r *Runtime) removeLocked(uid string) {
	for i, sb := range r.sandboxes {
		if sb.GetMetadata().GetUid() == uid {
			r.sandboxes = append(r.sandboxes[:i], r.sandboxes[i+1:]...)
			delete(r.ips, sb.GetId())
			return
		}
	}
}

// VanishAfterList removes the pod's sandbox right after the next
// ListPodSandbox has listed it, so the caller's PodSandboxStatus for it
// finds it gone: the race of a pod deleted between two CRI calls.
func (r *Runtime) VanishAfterList(uid string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vanish[uid] = true
}

// StatusCalls counts PodSandboxStatus calls.
func (r *Runtime) StatusCalls() int64 { return r.statuses.Load() }

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
	for uid := range r.vanish {
		r.removeLocked(uid)
		delete(r.vanish, uid)
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

// PodSandboxStatus answers a sandbox's IP.
func (r *Runtime) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	r.calls.Add(1)
	r.statuses.Add(1)
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
