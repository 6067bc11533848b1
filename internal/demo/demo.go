//go:build cgo

// Package demo runs the whole headroom system in one process, with no GPU
// and no cluster: simulated GPU nodes with simulated vLLM servers, a real
// headroom-agent per node, two headroom-picker replicas, a gateway that
// plays Envoy's part, and a load generator. It runs the same load under
// each routing policy in turn, draws a live view while it runs, and ends
// with a table comparing the policies.
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/modelsim"
)

// Options configures the demo.
type Options struct {
	// Nodes is a comma-separated list of profile:GPUs, e.g. h100:8.
	Nodes string
	// Policies run one after the other, each on a fresh cluster.
	Policies string
	// Duration is how long requests arrive under each policy.
	Duration time.Duration
	// Load is the offered load as a fraction of the pool's capacity.
	Load float64
	// Throttled is how many GPUs run at half speed (clocks cut).
	Throttled int
	Pickers   int
	Refresh   time.Duration
	Seed      uint64
}

// DefaultOptions is about a minute: round-robin, then headroom, 18 s each
// at 85% of the capacity of two H100 nodes and an A100 node, with one
// throttled GPU.
func DefaultOptions() Options {
	return Options{Nodes: "h100:8,h100:8,a100:8", Policies: "round-robin,headroom", Duration: 18 * time.Second,
		Load: 0.85, Throttled: 1, Pickers: 2, Refresh: time.Second, Seed: 1}
}

// AddFlags registers the demo's flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Nodes, "nodes", o.Nodes, fmt.Sprintf("simulated nodes, comma-separated profile:GPUs (profiles: %s; up to 8 GPUs)", strings.Join(modelsim.ProfileNames(), ", ")))
	fs.StringVar(&o.Policies, "policies", o.Policies, fmt.Sprintf("routing policies to compare, in order (of %s)", strings.Join(cluster.Policies(), ", ")))
	fs.DurationVar(&o.Duration, "duration", o.Duration, "how long requests arrive under each policy")
	fs.Float64Var(&o.Load, "load", o.Load, "offered load as a fraction of the pool's capacity")
	fs.IntVar(&o.Throttled, "throttled", o.Throttled, "how many GPUs run at half speed")
	fs.IntVar(&o.Pickers, "pickers", o.Pickers, "headroom-picker replicas")
	fs.DurationVar(&o.Refresh, "refresh", o.Refresh, "how often the live view is redrawn")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the load and the simulators")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if _, err := o.nodeSpecs(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range o.policies() {
		if p == cluster.PolicyEPP {
			errs = append(errs, errors.New("--policies: epp, the reference picker, runs only in make bench-routing, which starts it on a kube-apiserver"))
			continue
		}
		co := cluster.DefaultOptions()
		co.Policy = p
		if err := co.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--policies: %q is not one of %s", p, strings.Join(cluster.Policies(), ", ")))
		}
	}
	if o.Duration < time.Second {
		errs = append(errs, fmt.Errorf("--duration %s: want at least 1s", o.Duration))
	}
	if !(o.Load > 0 && o.Load <= 2) {
		errs = append(errs, fmt.Errorf("--load %g: want a fraction of capacity in (0, 2]", o.Load))
	}
	if o.Throttled < 0 || o.Pickers < 1 || o.Pickers > 8 {
		errs = append(errs, fmt.Errorf("--throttled %d, --pickers %d: want ≥ 0 and 1–8", o.Throttled, o.Pickers))
	}
	if o.Refresh < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--refresh %s is below 100ms", o.Refresh))
	}
	return errors.Join(errs...)
}

func (o *Options) policies() []string {
	var out []string
	for _, p := range strings.Split(o.Policies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// nodeSpecs parses --nodes.
func (o *Options) nodeSpecs() ([]cluster.NodeSpec, error) {
	systems := map[string]string{"h100": "dgxh100", "a100": "dgxa100", "h200": "dgxh200"}
	var specs []cluster.NodeSpec
	for _, f := range strings.Split(o.Nodes, ",") {
		prof, n, ok := strings.Cut(strings.TrimSpace(f), ":")
		gpus, err := strconv.Atoi(n)
		sys := systems[prof]
		if _, perr := modelsim.LookupProfile(prof); !ok || err != nil || gpus < 1 || gpus > 8 || sys == "" || perr != nil {
			return nil, fmt.Errorf("--nodes: %q: want profile:GPUs with a profile of h100, a100 or h200 and 1–8 GPUs", f)
		}
		specs = append(specs, cluster.NodeSpec{System: sys, Server: prof, GPUs: gpus})
	}
	return specs, nil
}

// Run runs the demo, drawing on out, until every policy has run or ctx
// ends.
func Run(ctx context.Context, o Options, out io.Writer, tty bool, logger *slog.Logger) error {
	specs, err := o.nodeSpecs()
	if err != nil {
		return err
	}
	var results []policyResult
	for _, p := range o.policies() {
		r, err := runPolicy(ctx, o, specs, p, out, tty, logger)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	summary(out, o, results)
	return nil
}
