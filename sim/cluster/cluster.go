//go:build cgo

// Package cluster runs a whole headroom system in one process: simulated
// GPU nodes (simulated GPUs under simulated model servers, a fake kubelet
// and container runtime, and a real headroom-agent each), headroom-picker
// replicas the agents stream to, and a gateway that plays Envoy's part in
// front of the pool. The demo, the routing benchmark and the end-to-end
// tests build on it.
//
// Every model server listens on its own loopback address, 127.0.N.M, as
// if it were a pod IP; Linux routes all of 127/8 to the loopback device.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/sim/gateway"
	"github.com/headroom-dev/headroom/sim/modelsim"
)

// Policy names: headroom routes through the picker replicas over
// ext_proc; the others are baselines the gateway runs itself.
const (
	PolicyHeadroom     = "headroom"
	PolicyRoundRobin   = "round-robin"
	PolicyRandom       = "random"
	PolicyLeastRequest = "least-request"
	PolicyQueueKV      = "queue-kv"
	// PolicyEPP routes through the reference endpoint picker (the GIE
	// EPP) over ext_proc; Options.EPP starts it.
	PolicyEPP = "epp"
)

// Policies lists the routing policies in the order reports show them.
func Policies() []string {
	return []string{PolicyRoundRobin, PolicyRandom, PolicyLeastRequest, PolicyQueueKV, PolicyEPP, PolicyHeadroom}
}

// NodeSpec describes one simulated GPU node.
type NodeSpec struct {
	// System is the simulated server (gpusim profile, e.g. dgxh100).
	System string
	// Server is the model-server speed profile of its GPUs (modelsim,
	// e.g. h100).
	Server string
	// GPUs is how many of the system's GPUs serve; 0 means all.
	GPUs int
	// LoRAs are the LoRA adapters its servers serve, MaxLoRAs how many
	// distinct ones a batch may hold (vLLM's --max-loras; 0: 1).
	LoRAs    []string
	MaxLoRAs int
}

// Options configures a cluster.
type Options struct {
	Nodes []NodeSpec
	// Policy is one of Policies().
	Policy string
	// Pickers is the number of picker replicas (headroom policy only;
	// baselines run none).
	Pickers int
	// EPP starts the reference endpoint picker for PolicyEPP: it is called
	// with the model servers' ip:port once they listen, and returns the
	// ext_proc addresses of its replicas and what stops them.
	EPP func(ctx context.Context, endpoints []string) (extproc []string, stop func(), err error)
	// Backend, when set, starts the model servers instead of in-process
	// sim/modelsim servers; NodeSpec.Server then names its server class.
	Backend Backend
	// SharedPort makes every model server listen on the same port, each
	// on its own IP, as an InferencePool's pods do (the EPP needs it);
	// with a Backend it is always on.
	SharedPort bool
	// ExternalPickers, when set, replaces the in-process replicas with
	// pickers running elsewhere (processes a fault test can SIGKILL): it
	// is called with the model servers' ip:port once they listen, and
	// returns the replicas it started to route to them.
	ExternalPickers func(endpoints []string) ([]ExternalPicker, error)
	// Model is the served model's name.
	Model string
	// AgentInterval is the agents' GPU sample interval; their model-server
	// scrape runs at 100 ms regardless.
	AgentInterval time.Duration
	// ScoringConfig is a picker scoring configuration file (empty:
	// defaults).
	ScoringConfig string
	// NoDirectScrape turns off the pickers' own reads of model servers
	// without a fresh agent report (picker/direct), to measure what they
	// add.
	NoDirectScrape bool
	// GatewayAddress is where the gateway listens.
	GatewayAddress string
	// FlushInterval is the model servers' streaming flush interval.
	FlushInterval time.Duration
	Seed          uint64
	Logger        *slog.Logger
}

// DefaultOptions is the demo's cluster: two H100 nodes and an A100 node of
// eight GPUs each, routed by two picker replicas.
func DefaultOptions() Options {
	return Options{
		Nodes: []NodeSpec{
			{System: "dgxh100", Server: "h100"}, {System: "dgxh100", Server: "h100"}, {System: "dgxa100", Server: "a100"},
		},
		Policy: PolicyHeadroom, Pickers: 2, Model: "llama-3-8b", AgentInterval: 500 * time.Millisecond,
		GatewayAddress: "127.0.0.1:0", FlushInterval: 100 * time.Millisecond, Seed: 1,
	}
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Nodes) == 0 || len(o.Nodes) > 200 {
		errs = append(errs, fmt.Errorf("cluster: %d nodes, want 1 to 200", len(o.Nodes)))
	}
	for i, n := range o.Nodes {
		if n.GPUs < 0 || n.GPUs > 8 {
			errs = append(errs, fmt.Errorf("cluster: node %d: %d GPUs, want 0 (all) to 8", i, n.GPUs))
		}
		if err := o.checkClass(n.Server); err != nil {
			errs = append(errs, fmt.Errorf("cluster: node %d: %w", i, err))
		}
	}
	if !validPolicy(o.Policy) {
		errs = append(errs, fmt.Errorf("cluster: policy %q, want one of %s", o.Policy, strings.Join(Policies(), ", ")))
	}
	if o.Policy == PolicyHeadroom && (o.Pickers < 1 || o.Pickers > 8) {
		errs = append(errs, fmt.Errorf("cluster: %d picker replicas, want 1 to 8", o.Pickers))
	}
	if o.Policy == PolicyEPP && o.EPP == nil {
		errs = append(errs, errors.New("cluster: the epp policy needs Options.EPP to start the reference picker"))
	}
	if o.AgentInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("cluster: agent interval %s is below 100ms", o.AgentInterval))
	}
	return errors.Join(errs...)
}

// checkClass reports whether the servers can be started: a modelsim
// profile, or a class of the Backend.
func (o *Options) checkClass(class string) error {
	if o.Backend != nil {
		return o.Backend.Check(class)
	}
	_, err := modelsim.LookupProfile(class)
	return err
}

func validPolicy(p string) bool {
	for _, q := range Policies() {
		if p == q {
			return true
		}
	}
	return false
}

// Cluster is a running system.
type Cluster struct {
	o       Options
	log     *slog.Logger
	cancel  context.CancelFunc
	Nodes   []*Node
	Pickers []*Picker
	Gateway *gateway.Gateway
	// URL is the gateway's base URL.
	URL  string
	gwDo func() error
	// external are the replicas ExternalPickers started.
	external []ExternalPicker
	// stopPoller waits for the queue-kv policy's metrics poller.
	stopPoller func()
	// eppAddrs are the reference picker's ext_proc addresses; stopEPP
	// stops it.
	eppAddrs []string
	stopEPP  func()
	// port is the port every server shares (SharedPort), 0 when none.
	port int
}

// Start builds and starts a cluster; Close stops it.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &Cluster{o: o, log: o.Logger, cancel: cancel}
	if err := c.start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	if c.o.SharedPort || c.o.Backend != nil {
		var ips []string
		for i, spec := range c.o.Nodes {
			gpus := spec.GPUs
			if gpus == 0 {
				gpus = 8 // every simulated system has eight
			}
			for g := range gpus {
				ips = append(ips, serverIP(i, g))
			}
		}
		port, err := sharedPort(ips)
		if err != nil {
			return err
		}
		c.port = port
	}
	for i, spec := range c.o.Nodes {
		n, err := startNode(ctx, c, i, spec)
		if err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		c.Nodes = append(c.Nodes, n)
	}
	if c.o.Policy == PolicyHeadroom && c.o.ExternalPickers != nil {
		ext, err := c.o.ExternalPickers(c.Endpoints())
		if err != nil {
			return fmt.Errorf("external pickers: %w", err)
		}
		c.external = ext
	} else if c.o.Policy == PolicyHeadroom {
		for i := range c.o.Pickers {
			p, err := c.startPicker(ctx, i)
			if err != nil {
				return fmt.Errorf("picker %d: %w", i, err)
			}
			c.Pickers = append(c.Pickers, p)
		}
	}
	if c.o.Policy == PolicyEPP {
		if err := c.startEPP(ctx); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := n.startAgent(ctx, c.ingestAddresses()); err != nil {
			return fmt.Errorf("%s: agent: %w", n.Name, err)
		}
	}
	return c.startGateway(ctx)
}

// Endpoints lists every model server's ip:port, node by node.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, n := range c.Nodes {
		for _, s := range n.Servers {
			eps = append(eps, s.Addr)
		}
	}
	return eps
}

// Servers lists every model server, node by node.
func (c *Cluster) Servers() []*Server {
	var out []*Server
	for _, n := range c.Nodes {
		out = append(out, n.Servers...)
	}
	return out
}

// Capacity is the pool's analytic capacity in requests per second for the
// given mean prompt and output lengths, counting each server's slowdown.
func (c *Cluster) Capacity(meanPrompt, meanOutput float64) float64 {
	var total float64
	for _, s := range c.Servers() {
		total += s.Capacity(meanPrompt, meanOutput)
	}
	return total
}

// Close stops everything and waits for it.
func (c *Cluster) Close() {
	c.cancel()
	if c.Gateway != nil {
		_ = c.Gateway.Close()
	}
	if c.gwDo != nil {
		_ = c.gwDo()
	}
	for _, p := range c.Pickers {
		p.wait()
	}
	if c.stopPoller != nil {
		c.stopPoller()
	}
	if c.stopEPP != nil {
		c.stopEPP()
	}
	for _, n := range c.Nodes {
		n.stop()
	}
}
