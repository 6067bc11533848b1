package podresources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/headroom-dev/headroom/internal/refresh"
)

// DefaultSocket is the kubelet's pod-resources socket.
const DefaultSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

// DefaultResources are the resource names whose devices are GPUs.
var DefaultResources = []string{"nvidia.com/gpu", "nvidia.com/mig-*"}

// Options configures a Client. Its refresh schedule keeps at least MinGap
// (default 1 s) between refreshes of two calls each, far under the
// kubelet's 100 QPS (burst 10) limit, and backs off after failures and
// ResourceExhausted.
type Options struct {
	refresh.Options
	Socket string
	// Resources are resource-name patterns (path.Match) counted as GPUs.
	Resources []string
}

// DefaultOptions returns a 10 s refresh of the default socket.
func DefaultOptions() Options {
	return Options{
		Options: refresh.Options{Interval: 10 * time.Second, MinGap: time.Second, Timeout: 5 * time.Second, MaxBackoff: time.Minute},
		Socket:  DefaultSocket, Resources: DefaultResources,
	}
}

// Assignment is one container's hold on one GPU device.
type Assignment struct {
	Namespace, Pod, Container string
	Resource                  string
	Device                    DeviceRef
	// ID is the device ID as the kubelet gave it.
	ID string
}

// View is the kubelet's answer at one refresh; never modified once
// published.
type View struct {
	// Time is when the answer arrived.
	Time        time.Time
	Assignments []Assignment
	// Allocatable are the GPU devices the kubelet can hand out.
	Allocatable []DeviceRef
	// Unparsed counts device IDs of GPU resources in no known form.
	Unparsed int
}

// Client keeps a cached View of the kubelet's pod resources.
type Client struct {
	opts   Options
	logger *slog.Logger
	conn   *grpc.ClientConn
	api    podresv1.PodResourcesListerClient

	view atomic.Pointer[View]
	*refresh.Loop
}

// New connects lazily to the socket; nothing is called until Run.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	conn, err := grpc.NewClient("unix:"+opts.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("pod-resources client for %s: %w", opts.Socket, err)
	}
	c := &Client{opts: opts, logger: logger, conn: conn, api: podresv1.NewPodResourcesListerClient(conn)}
	c.Loop = refresh.New("pod-resources ("+opts.Socket+")", opts.Options, c.fetchAndPublish, logger)
	return c, nil
}

// View returns the latest good answer, or nil before the first.
func (c *Client) View() *View { return c.view.Load() }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) fetchAndPublish(ctx context.Context) error {
	v, err := c.fetch(ctx)
	if err != nil {
		return err
	}
	c.view.Store(v)
	return nil
}

// ErrRateLimited marks the kubelet refusing a call for its rate limit.
var ErrRateLimited = errors.New("kubelet rate limit")

func (c *Client) fetch(ctx context.Context) (*View, error) {
	list, err := c.api.List(ctx, &podresv1.ListPodResourcesRequest{})
	if err != nil {
		return nil, wrapRPC("List", err)
	}
	alloc, err := c.api.GetAllocatableResources(ctx, &podresv1.AllocatableResourcesRequest{})
	if err != nil {
		return nil, wrapRPC("GetAllocatableResources", err)
	}
	v := &View{Time: time.Now()}
	for _, p := range list.GetPodResources() {
		for _, ctr := range p.GetContainers() {
			c.addDevices(v, p.GetNamespace(), p.GetName(), ctr)
		}
	}
	for _, d := range alloc.GetDevices() {
		if !c.gpuResource(d.GetResourceName()) {
			continue
		}
		for _, id := range d.GetDeviceIds() {
			if ref, err := ParseDeviceID(id); err == nil {
				v.Allocatable = append(v.Allocatable, ref)
			}
		}
	}
	return v, nil
}

// addDevices records a container's GPU devices, from device plugins and
// from DRA claims.
func (c *Client) addDevices(v *View, ns, pod string, ctr *podresv1.ContainerResources) {
	for _, d := range ctr.GetDevices() {
		if !c.gpuResource(d.GetResourceName()) {
			continue
		}
		for _, id := range d.GetDeviceIds() {
			ref, err := ParseDeviceID(id)
			if err != nil {
				v.Unparsed++
				c.logger.Debug("device ID not understood", "pod", ns+"/"+pod, "id", id, "err", err)
				continue
			}
			v.Assignments = append(v.Assignments, Assignment{Namespace: ns, Pod: pod, Container: ctr.GetName(), Resource: d.GetResourceName(), Device: ref, ID: id})
		}
	}
	for _, dr := range ctr.GetDynamicResources() {
		for _, cr := range dr.GetClaimResources() {
			ref, ok := draDevice(cr)
			if !ok {
				if cr.GetDriverName() == draDriver {
					v.Unparsed++
				}
				continue
			}
			v.Assignments = append(v.Assignments, Assignment{Namespace: ns, Pod: pod, Container: ctr.GetName(), Resource: "dra:" + cr.GetDriverName(), Device: ref, ID: cr.GetDeviceName()})
		}
	}
}

func (c *Client) gpuResource(name string) bool {
	for _, pat := range c.opts.Resources {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

func wrapRPC(call string, err error) error {
	if status.Code(err) == codes.ResourceExhausted {
		return fmt.Errorf("%s: %w: %w", call, ErrRateLimited, err)
	}
	return fmt.Errorf("%s: %w", call, err)
}
