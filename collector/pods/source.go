// Package pods is the agent's attribution source: it joins the kubelet's
// pod-resources view (which container holds which GPU), the container
// runtime's view (container IDs, names, pod UIDs and IPs) and
// /proc/<pid>/cgroup (which container each GPU process runs in), and reads
// the cgroup v2 memory and CPU of every container of a GPU pod, sidecars
// included. The kubelet and the runtime are asked on their own refresh
// clocks, never per sample; a view that stops answering is kept, marked
// stale, and GPU metrics keep flowing.
package pods

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/cgroups"
	"github.com/headroom-dev/headroom/collector/cri"
	"github.com/headroom-dev/headroom/collector/podresources"
	"github.com/headroom-dev/headroom/snapshot"
)

// Name is the source's name in the collector table.
const Name = "pods"

// Options configures the source. The host's /proc and cgroup mount are the
// agent's (collector.Host).
type Options struct {
	KubeletSocket string
	RuntimeSocket string
	Refresh       time.Duration
	Sidecars      string // comma-separated container names
	Resources     string // comma-separated resource-name patterns
}

// DefaultOptions returns the defaults for a Kubernetes GPU node.
func DefaultOptions() Options {
	return Options{
		KubeletSocket: podresources.DefaultSocket, RuntimeSocket: cri.ContainerdSocket, Refresh: 10 * time.Second,
		Sidecars: "istio-proxy", Resources: strings.Join(podresources.DefaultResources, ","),
	}
}

// Entry is the pods collector's row of the collector table, with options
// o.
func Entry(o Options) collector.Entry {
	opts := &o
	return collector.Entry{
		Name: Name, DefaultOn: true,
		Help:    "pod and container of each GPU and process (kubelet pod-resources, CRI, /proc), container memory and CPU from cgroup v2",
		Options: opts,
		// The join attributes NVML's processes and builds the pods.
		Reads:  []snapshot.Section{snapshot.SectionGPUs},
		Writes: []snapshot.Section{snapshot.SectionProcessOwners, snapshot.SectionAttribution},
		New: func(env collector.Env) (collector.Source, error) {
			return New(env.Ctx, *opts, env.Host, env.Logger)
		},
	}
}

// AddFlags registers the source's flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.KubeletSocket, "pods.kubelet-socket", o.KubeletSocket, "kubelet pod-resources socket")
	fs.StringVar(&o.RuntimeSocket, "pods.runtime-socket", o.RuntimeSocket, "CRI socket (CRI-O: "+cri.CRIOSocket+")")
	fs.DurationVar(&o.Refresh, "pods.refresh-interval", o.Refresh, "how often to ask the kubelet and the runtime (sooner when a GPU process appears in an unknown container)")
	fs.StringVar(&o.Sidecars, "pods.sidecar-containers", o.Sidecars, "comma-separated names of mesh proxy containers")
	fs.StringVar(&o.Resources, "pods.gpu-resources", o.Resources, "comma-separated resource-name patterns that are GPUs")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Refresh < time.Second {
		errs = append(errs, fmt.Errorf("--pods.refresh-interval %s is below 1s", o.Refresh))
	}
	if o.KubeletSocket == "" || o.RuntimeSocket == "" {
		errs = append(errs, errors.New("--pods.kubelet-socket and --pods.runtime-socket must not be empty"))
	}
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Source is the attribution source.
type Source struct {
	kubelet  *podresources.Client
	runtime  *cri.Client
	cg       *cgroups.Reader
	sidecars map[string]bool
	logger   *slog.Logger

	mu   sync.Mutex
	pids map[uint32]pidEntry
	seen map[uint32]bool
	// procPods are pods that ran GPU processes at the last join: their
	// containers' cgroups are read even if the kubelet assigned no GPU.
	procPods map[string]bool
}

type pidEntry struct {
	ref cgroups.Ref
	err error
}

// New starts the kubelet and runtime refresh loops, which run until ctx
// ends. It reads the host's /proc and cgroups where host says.
func New(ctx context.Context, o Options, host collector.Host, logger *slog.Logger) (*Source, error) {
	root := host.CgroupRoot
	if root == "" {
		r, err := cgroups.DetectRoot(host.ProcRoot)
		if err != nil {
			return nil, err
		}
		root = r
	}
	po := podresources.DefaultOptions()
	po.Socket, po.Interval, po.Resources = o.KubeletSocket, o.Refresh, splitList(o.Resources)
	kubelet, err := podresources.New(po, logger)
	if err != nil {
		return nil, err
	}
	co := cri.DefaultOptions()
	co.Socket, co.Interval = o.RuntimeSocket, o.Refresh
	runtime, err := cri.New(co, logger)
	if err != nil {
		_ = kubelet.Close()
		return nil, err
	}
	s := &Source{
		kubelet: kubelet, runtime: runtime, cg: cgroups.NewReader(host.ProcRoot, root), logger: logger,
		sidecars: map[string]bool{}, pids: map[uint32]pidEntry{}, procPods: map[string]bool{},
	}
	for _, n := range splitList(o.Sidecars) {
		s.sidecars[n] = true
	}
	go kubelet.Run(ctx)
	go runtime.Run(ctx)
	return s, nil
}

// Close closes the connections.
func (s *Source) Close() error {
	return errors.Join(s.kubelet.Close(), s.runtime.Close())
}

// ErrNoViews means neither the kubelet nor the runtime has answered yet.
var ErrNoViews = errors.New("kubelet and container runtime not answered yet")

// RuntimeView returns the container runtime's latest view (nil before it
// first answered), for sources that name pods from it (ztunnel).
func (s *Source) RuntimeView() *cri.View { return s.runtime.View() }
