//go:build cgo

// Command routing is the routing-quality benchmark (`make bench-routing`):
// for each scenario, load level and policy it starts a fresh simulated
// cluster (sim/cluster), offers a Poisson stream of ShareGPT-like
// requests at a fraction of the pool's capacity, and compares what the
// clients saw: TTFT, latency, throughput and how evenly requests spread.
// It writes a Markdown table and SVG plots.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
)

type options struct {
	scenarios, policies string
	loads, hetLoads     []float64
	duration, warmup    time.Duration
	settle              time.Duration
	seed                uint64
	markdown, plots     string
}

func main() {
	o := options{}
	var loads, hetLoads string
	flag.StringVar(&o.scenarios, "scenarios", "all", "comma-separated scenarios, or all")
	flag.StringVar(&o.policies, "policies", strings.Join(cluster.Policies(), ","), "comma-separated policies")
	flag.StringVar(&loads, "loads", "0.85", "offered loads (fractions of capacity) for most scenarios")
	flag.StringVar(&hetLoads, "het-loads", "0.5,0.7,0.85,1.0", "offered loads for the heterogeneous scenario")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long requests arrive in each run")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "requests started in the first this long are not counted")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait after a scenario's setup before the load starts")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the load and the random policies")
	flag.StringVar(&o.markdown, "markdown", "", "write the results table here (empty: stdout)")
	flag.StringVar(&o.plots, "plots", "", "write SVG plots into this directory (empty: none)")
	flag.Parse()
	var err error
	if o.loads, err = parseLoads(loads); err == nil {
		o.hetLoads, err = parseLoads(hetLoads)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "routing:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "routing:", err)
		os.Exit(1)
	}
}

func parseLoads(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 || v > 2 {
			return nil, fmt.Errorf("load %q: want a fraction of capacity in (0, 2]", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func run(ctx context.Context, o options) error {
	scs, err := pick(scenarios(o.loads, o.hetLoads), o.scenarios)
	if err != nil {
		return err
	}
	policies := strings.Split(o.policies, ",")
	var results []result
	start := time.Now()
	for _, sc := range scs {
		for _, load := range sc.loads {
			for _, p := range policies {
				r, err := runOne(ctx, o, sc, strings.TrimSpace(p), load)
				if err != nil {
					return fmt.Errorf("%s/%s/%.2f: %w", sc.name, p, load, err)
				}
				fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Since(start).Round(time.Second), r)
				results = append(results, r)
			}
		}
	}
	return report(o, scs, results)
}
