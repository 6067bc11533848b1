// Package cri reads the node's pods and containers from the container
// runtime over the CRI gRPC API (ListPodSandbox, PodSandboxStatus,
// ListContainers): container IDs, container names (native sidecars
// included), pod UIDs, pod IPs and the few labels and annotations that say
// where a pod's model server serves its metrics. It refreshes on its own clock and caches
// the answer; nothing here runs per scrape or per sample.
//
// It uses k8s.io/cri-api's generated client directly: the same wire
// protocol as k8s.io/cri-client, without the logging and tracing stack
// that wrapper brings.
package cri

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/headroom-dev/headroom/internal/refresh"
)

// Default sockets of the two common runtimes.
const (
	ContainerdSocket = "/run/containerd/containerd.sock"
	CRIOSocket       = "/var/run/crio/crio.sock"
)

// Options configures a Client.
type Options struct {
	refresh.Options
	Socket string
}

// DefaultOptions returns a 10 s refresh of containerd's socket.
func DefaultOptions() Options {
	return Options{
		Options: refresh.Options{Interval: 10 * time.Second, MinGap: time.Second, Timeout: 5 * time.Second, MaxBackoff: time.Minute},
		Socket:  ContainerdSocket,
	}
}

// Container is one running container.
type Container struct {
	ID, Name string
}

// The sandbox label and annotations the agent reads (the kubelet copies
// a pod's labels and annotations onto its sandbox). Only these are kept.
const (
	LabelEngineType       = "inference.networking.k8s.io/engine-type"
	AnnotationMetricsPort = "headroom.dev/metrics-port"
	AnnotationPromPort    = "prometheus.io/port"
	AnnotationPromPath    = "prometheus.io/path"
	// LabelApp finds mesh node proxies (app: ztunnel).
	LabelApp = "app"
)

// Pod is one ready pod sandbox with its running containers.
type Pod struct {
	UID, Namespace, Name string
	SandboxID            string
	// IP is the pod's primary IP; empty for host-network pods.
	IP         string
	Containers []Container
	// Meta is what the pod says about its model server.
	Meta Meta
}

// Meta is the model-server metadata of a pod, as written (empty when
// unset): the engine-type label, the metrics port (headroom.dev/metrics-port,
// else prometheus.io/port) and the prometheus.io/path annotation.
type Meta struct {
	Engine, MetricsPort, MetricsPath string
	// App is the pod's app label (ztunnel's pods carry app: ztunnel).
	App string
}

// metaOf keeps the few keys the agent reads from a sandbox.
func metaOf(sb *runtimeapi.PodSandbox) Meta {
	ann := sb.GetAnnotations()
	port := ann[AnnotationMetricsPort]
	if port == "" {
		port = ann[AnnotationPromPort]
	}
	return Meta{Engine: sb.GetLabels()[LabelEngineType], MetricsPort: port, MetricsPath: ann[AnnotationPromPath], App: sb.GetLabels()[LabelApp]}
}

// View is the runtime's answer at one refresh; never modified once
// published.
type View struct {
	Time time.Time
	// Pods are sorted by namespace and name.
	Pods        []Pod
	byUID       map[string]int
	byContainer map[string][2]int
}

// Pod returns the pod with uid.
func (v *View) Pod(uid string) (Pod, bool) {
	i, ok := v.byUID[uid]
	if !ok {
		return Pod{}, false
	}
	return v.Pods[i], true
}

// Container returns the pod and container of a container ID.
func (v *View) Container(id string) (Pod, Container, bool) {
	at, ok := v.byContainer[id]
	if !ok {
		return Pod{}, Container{}, false
	}
	p := v.Pods[at[0]]
	return p, p.Containers[at[1]], true
}

// Client keeps a cached View of the runtime's pods.
type Client struct {
	*refresh.Loop
	opts Options
	conn *grpc.ClientConn
	api  runtimeapi.RuntimeServiceClient
	view atomic.Pointer[View]
	// ips caches sandbox IPs, which do not change while a sandbox lives,
	// so PodSandboxStatus is called once per new sandbox. Only the
	// refresh goroutine touches it.
	ips map[string]string
}

// New connects lazily to the runtime's socket; nothing is called until Run
// or Refresh.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	conn, err := grpc.NewClient("unix:"+opts.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("CRI client for %s: %w", opts.Socket, err)
	}
	c := &Client{opts: opts, conn: conn, api: runtimeapi.NewRuntimeServiceClient(conn), ips: map[string]string{}}
	c.Loop = refresh.New("container runtime ("+opts.Socket+")", opts.Options, c.fetch, logger)
	return c, nil
}

// View returns the latest good answer, or nil before the first.
func (c *Client) View() *View { return c.view.Load() }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) fetch(ctx context.Context) error {
	sandboxes, err := c.api.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{
		Filter: &runtimeapi.PodSandboxFilter{State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}},
	})
	if err != nil {
		return fmt.Errorf("ListPodSandbox: %w", err)
	}
	containers, err := c.api.ListContainers(ctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}},
	})
	if err != nil {
		return fmt.Errorf("ListContainers: %w", err)
	}
	var pods []Pod
	live := map[string]bool{}
	for _, sb := range sandboxes.GetItems() {
		md := sb.GetMetadata()
		ip, err := c.sandboxIP(ctx, sb.GetId())
		if errors.Is(err, errSandboxGone) {
			continue // deleted since it was listed: not a pod any more
		}
		if err != nil {
			return err
		}
		live[sb.GetId()] = true
		pods = append(pods, Pod{UID: md.GetUid(), Namespace: md.GetNamespace(), Name: md.GetName(), SandboxID: sb.GetId(), IP: ip, Meta: metaOf(sb)})
	}
	for id := range c.ips {
		if !live[id] {
			delete(c.ips, id)
		}
	}
	bySandbox := map[string]int{}
	for i, p := range pods {
		bySandbox[p.SandboxID] = i
	}
	for _, ctr := range containers.GetContainers() {
		i, ok := bySandbox[ctr.GetPodSandboxId()]
		if !ok {
			continue // its sandbox is not ready (being torn down)
		}
		pods[i].Containers = append(pods[i].Containers, Container{ID: ctr.GetId(), Name: ctr.GetMetadata().GetName()})
	}
	c.view.Store(NewView(time.Now(), pods))
	return nil
}

// NewView indexes pods (sorting them by namespace and name).
func NewView(at time.Time, pods []Pod) *View {
	slices.SortFunc(pods, func(a, b Pod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.UID, b.UID))
	})
	v := &View{Time: at, Pods: pods, byUID: map[string]int{}, byContainer: map[string][2]int{}}
	for i, p := range pods {
		v.byUID[p.UID] = i
		for j, c := range p.Containers {
			v.byContainer[c.ID] = [2]int{i, j}
		}
	}
	return v
}

// errSandboxGone: the runtime no longer knows a sandbox it just listed.
var errSandboxGone = errors.New("sandbox gone")

// sandboxIP returns a sandbox's primary IP, asking the runtime only for
// sandboxes not seen before. A sandbox removed since it was listed gives
// errSandboxGone, which costs only that pod, not the refresh.
func (c *Client) sandboxIP(ctx context.Context, id string) (string, error) {
	if ip, ok := c.ips[id]; ok {
		return ip, nil
	}
	st, err := c.api.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if status.Code(err) == codes.NotFound {
		return "", fmt.Errorf("PodSandboxStatus %.12s: %w", id, errSandboxGone)
	}
	if err != nil {
		return "", fmt.Errorf("PodSandboxStatus %.12s: %w", id, err)
	}
	ip := st.GetStatus().GetNetwork().GetIp()
	c.ips[id] = ip
	return ip, nil
}
