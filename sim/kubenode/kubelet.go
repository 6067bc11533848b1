// Package kubenode simulates the Kubernetes side of a GPU node for tests
// and the demo: a kubelet pod-resources server and a CRI runtime server on
// real unix sockets (the generated gRPC servers of the real APIs), and a
// /proc and cgroup v2 tree on disk that places processes in containers.
package kubenode

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// Kubelet serves the pod-resources API.
type Kubelet struct {
	podresv1.UnimplementedPodResourcesListerServer

	mu          sync.Mutex
	pods        []*podresv1.PodResources
	allocatable []*podresv1.ContainerDevices
	exhausted   int
	calls       atomic.Int64

	server
}

// NewKubelet returns a kubelet that will serve on socket (Start, Stop).
func NewKubelet(socket string) *Kubelet {
	k := &Kubelet{}
	k.server = server{socket: socket, register: func(s *grpc.Server) { podresv1.RegisterPodResourcesListerServer(s, k) }}
	return k
}

// Calls counts the RPCs served.
func (k *Kubelet) Calls() int64 { return k.calls.Load() }

// Assign records that a container holds devices of a resource.
func (k *Kubelet) Assign(namespace, pod, container, resource string, deviceIDs ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var p *podresv1.PodResources
	for _, q := range k.pods {
		if q.Namespace == namespace && q.Name == pod {
			p = q
		}
	}
	if p == nil {
		p = &podresv1.PodResources{Namespace: namespace, Name: pod}
		k.pods = append(k.pods, p)
	}
	var c *podresv1.ContainerResources
	for _, q := range p.Containers {
		if q.Name == container {
			c = q
		}
	}
	if c == nil {
		c = &podresv1.ContainerResources{Name: container}
		p.Containers = append(p.Containers, c)
	}
	if resource != "" {
		c.Devices = append(c.Devices, &podresv1.ContainerDevices{ResourceName: resource, DeviceIds: deviceIDs})
	}
}

// SetPods replaces every pod's resources (for forms Assign does not build,
// such as DRA claims).
func (k *Kubelet) SetPods(pods []*podresv1.PodResources) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pods = pods
}

// SetAllocatable sets what GetAllocatableResources answers.
func (k *Kubelet) SetAllocatable(resource string, deviceIDs ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.allocatable = []*podresv1.ContainerDevices{{ResourceName: resource, DeviceIds: deviceIDs}}
}

// Reset forgets every pod.
func (k *Kubelet) Reset() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pods = nil
}

// ExhaustNext makes the next n calls fail with ResourceExhausted, as the
// kubelet's rate limiter does.
func (k *Kubelet) ExhaustNext(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.exhausted = n
}

func (k *Kubelet) admit() error {
	k.calls.Add(1)
	if k.exhausted > 0 {
		k.exhausted--
		return status.Error(codes.ResourceExhausted, "rejected request: too many requests")
	}
	return nil
}

// List answers every pod's devices.
func (k *Kubelet) List(context.Context, *podresv1.ListPodResourcesRequest) (*podresv1.ListPodResourcesResponse, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.admit(); err != nil {
		return nil, err
	}
	return &podresv1.ListPodResourcesResponse{PodResources: k.pods}, nil
}

// GetAllocatableResources answers the node's GPU devices.
func (k *Kubelet) GetAllocatableResources(context.Context, *podresv1.AllocatableResourcesRequest) (*podresv1.AllocatableResourcesResponse, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.admit(); err != nil {
		return nil, err
	}
	return &podresv1.AllocatableResourcesResponse{Devices: k.allocatable}, nil
}
