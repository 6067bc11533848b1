//go:build cgo

// Package demo runs headroom on simulated GPUs in one process, with a live
// terminal view of what the agent sees. At this stage it is one node: a
// simulated DGX server under a moving load, read by a real agent over the
// same NVML adapter a GPU node uses, served as a Prometheus target and
// streamed to one picker replica.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/collector/dcgm"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/sim/gpusim"
)

// Options configures the demo.
type Options struct {
	Duration      time.Duration
	ListenAddress string
	Profile       string
	Seed          uint64
	Processes     int
	Refresh       time.Duration
}

// DefaultOptions returns a 20-second run on a simulated DGX H100.
func DefaultOptions() Options {
	return Options{Duration: 20 * time.Second, ListenAddress: "127.0.0.1:9400", Profile: "dgxh100", Seed: 1, Processes: 4, Refresh: time.Second}
}

// AddFlags registers the demo's flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long to run (0: until Ctrl-C)")
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "where the agent serves /metrics")
	fs.StringVar(&o.Profile, "sim-profile", o.Profile, fmt.Sprintf("simulated server: one of %v", gpusim.Profiles()))
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of UUIDs and load")
	fs.IntVar(&o.Processes, "sim-processes", o.Processes, "compute processes per GPU")
	fs.DurationVar(&o.Refresh, "refresh", o.Refresh, "how often the table is redrawn")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Duration < 0 {
		errs = append(errs, fmt.Errorf("--duration %s is negative", o.Duration))
	}
	if o.Refresh < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--refresh %s is below 100ms", o.Refresh))
	}
	if o.Processes < 1 {
		errs = append(errs, fmt.Errorf("--sim-processes %d: want at least 1", o.Processes))
	}
	return errors.Join(errs...)
}

// Run runs the demo, drawing on out, until the duration passes or ctx ends.
func Run(ctx context.Context, o Options, out io.Writer, tty bool, logger *slog.Logger) error {
	// Time runs at demo speed for heat: a GPU warms in seconds, not minutes.
	sim, err := gpusim.New(gpusim.Options{Profile: o.Profile, Seed: o.Seed, ThermalTimeConstant: 3 * time.Second})
	if err != nil {
		return err
	}
	sim.Populate(o.Processes, o.Seed)
	ao := agent.DefaultOptions()
	ao.NodeName = "demo-node-0"
	ao.ListenAddress = o.ListenAddress
	ao.Interval = 500 * time.Millisecond
	ao.GPUBackend = agent.BackendSim
	ao.SimProfile = o.Profile
	ao.GPULibrary = gonvml.FromInterface(sim)
	// The demo's pods have no model servers yet (their IPs lead nowhere),
	// so the model-server collector would only log failed scrapes.
	ao.Collectors = []string{nvml.Name, dcgm.Name, pods.Name}
	node, err := startKubeNode(sim)
	if err != nil {
		return err
	}
	defer node.stop()
	ao.Pods = node.options()
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	pk, err := startPicker(ctx, podEndpoints(sim.NumGPUs()), logger)
	if err != nil {
		return err
	}
	ao.Stream.Addresses, ao.Stream.Insecure = pk.p.IngestAddr().String(), true
	a, err := agent.New(ctx, ao, logger)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	go drive(ctx, sim, o.Duration)

	v := &view{out: out, tty: tty, addr: a.Addr().String(), total: o.Duration, start: time.Now(),
		picker: func() string { return pk.status(ao.NodeName) }}
	t := time.NewTicker(o.Refresh)
	defer t.Stop()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-t.C:
			v.draw(a.Latest())
		}
	}
	err = <-done
	v.summary(a.Latest())
	return errors.Join(err, <-pk.done)
}
