package podresources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// DefaultSocket is the kubelet's pod-resources socket.
const DefaultSocket = "/var/lib/kubelet/pod-resources/kubelet.sock"

// DefaultResources are the resource names whose devices are GPUs.
var DefaultResources = []string{"nvidia.com/gpu", "nvidia.com/mig-*"}

// Options configures a Client.
type Options struct {
	Socket string
	// Interval is the refresh period; Trigger asks for an earlier one.
	Interval time.Duration
	// MinGap is the least time between two refreshes, whatever triggers
	// them: two calls per refresh keep the agent far under the kubelet's
	// 100 QPS (burst 10) limit.
	MinGap time.Duration
	// Timeout bounds one refresh.
	Timeout time.Duration
	// Resources are resource-name patterns (path.Match) counted as GPUs.
	Resources []string
	// MaxBackoff caps the wait after failures and ResourceExhausted.
	MaxBackoff time.Duration
}

// DefaultOptions returns a 10 s refresh of the default socket.
func DefaultOptions() Options {
	return Options{
		Socket: DefaultSocket, Interval: 10 * time.Second, MinGap: time.Second,
		Timeout: 5 * time.Second, Resources: DefaultResources, MaxBackoff: time.Minute,
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

// Status is the health of the kubelet connection.
type Status struct {
	// LastSuccess is the time of the last good refresh (zero: never).
	LastSuccess time.Time
	// StaleSince is when refreshes started failing (zero: fresh).
	StaleSince time.Time
	LastErr    error
	Refreshes  uint64
	Failures   uint64
}

// Client keeps a cached View of the kubelet's pod resources.
type Client struct {
	opts   Options
	logger *slog.Logger
	conn   *grpc.ClientConn
	api    podresv1.PodResourcesListerClient

	view    atomic.Pointer[View]
	trigger chan struct{}

	mu     sync.Mutex
	status Status
}

// New connects lazily to the socket; nothing is called until Run.
func New(opts Options, logger *slog.Logger) (*Client, error) {
	conn, err := grpc.NewClient("unix:"+opts.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("pod-resources client for %s: %w", opts.Socket, err)
	}
	return &Client{
		opts: opts, logger: logger, conn: conn, api: podresv1.NewPodResourcesListerClient(conn),
		trigger: make(chan struct{}, 1),
	}, nil
}

// View returns the latest good answer, or nil before the first.
func (c *Client) View() *View { return c.view.Load() }

// Status returns the connection's health.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Trigger asks for a refresh sooner than the interval (say, when a GPU
// process appears in a container the view does not know). Triggers
// coalesce and still respect MinGap and backoff.
func (c *Client) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Run refreshes until ctx ends: at once, then every Interval or on Trigger,
// never closer than MinGap, backing off exponentially after failures.
func (c *Client) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		err := c.Refresh(ctx)
		wait := c.opts.Interval
		switch {
		case err == nil:
			backoff = 0
		case ctx.Err() != nil:
			return
		default:
			backoff = min(max(2*backoff, c.opts.MinGap), c.opts.MaxBackoff)
			wait = backoff
		}
		if !c.sleep(ctx, wait, err == nil) {
			return
		}
	}
}

// sleep waits for wait, or for a trigger after MinGap when triggers are
// allowed; it returns false when ctx ended.
func (c *Client) sleep(ctx context.Context, wait time.Duration, triggerable bool) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var trig <-chan struct{}
	if triggerable {
		trig = c.trigger
	}
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	case <-trig:
	}
	gap := time.NewTimer(c.opts.MinGap)
	defer gap.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-gap.C:
		return true
	}
}

// Refresh asks the kubelet once and publishes the answer.
func (c *Client) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	v, err := c.fetch(ctx)
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.status.Failures++
		if c.status.StaleSince.IsZero() {
			c.status.StaleSince = now
			c.logger.Warn("pod-resources unavailable; GPU attribution is stale until it answers", "socket", c.opts.Socket, "err", err)
		}
		c.status.LastErr = err
		return err
	}
	if !c.status.StaleSince.IsZero() {
		c.logger.Info("pod-resources answers again", "stale_for", now.Sub(c.status.StaleSince).Round(time.Second))
	}
	c.status.Refreshes++
	c.status.LastSuccess, c.status.StaleSince, c.status.LastErr = now, time.Time{}, nil
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
