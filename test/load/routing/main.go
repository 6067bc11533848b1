//go:build cgo

// Command routing is the routing-quality benchmark (`make bench-routing`):
// for each scenario, model-server simulator, load level, seed and policy
// it starts a fresh simulated cluster (sim/cluster), offers a Poisson
// stream of ShareGPT-like requests at a fraction of the pool's capacity,
// and compares what the clients saw: TTFT, latency, throughput and how
// requests spread over the pod classes. The baseline is the reference
// endpoint picker itself (the GIE EPP, a separate process on a real
// kube-apiserver), and every scenario runs both on sim/modelsim and on
// llm-d's llm-d-inference-sim (test/load/reference). It writes a Markdown
// report and SVG plots.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
)

// Simulators the benchmark runs the pools on.
const (
	simModelsim = "modelsim"
	simLLMD     = "llm-d"
)

type options struct {
	scenarios, policies, sims string
	loads, hetLoads           []float64
	duration, warmup, settle  time.Duration
	killAt                    time.Duration
	seed                      uint64
	seeds                     int
	budget                    time.Duration
	dryRun                    bool
	markdown, plots           string
	// variants maps a name to a picker scoring configuration file: the
	// policy "headroom@name" is headroom with it.
	variants map[string]string
	// tools are the reference binaries and the control plane's.
	eppBin, simBin, assets, logDir string
}

func main() {
	o, err := parseFlags(os.Args[1:])
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

func parseFlags(args []string) (options, error) {
	o := options{}
	fs := flag.NewFlagSet("routing", flag.ContinueOnError)
	var loads, hetLoads, variants string
	cache := filepath.Join(".cache")
	fs.StringVar(&o.scenarios, "scenarios", "all", "comma-separated scenarios, or all")
	fs.StringVar(&o.policies, "policies", "round-robin,least-request,queue-kv,epp,headroom", "comma-separated policies: "+strings.Join(cluster.Policies(), ", "))
	fs.StringVar(&o.sims, "sims", simModelsim+","+simLLMD, "model-server simulators: modelsim (this repository's) and llm-d (llm-d-inference-sim)")
	fs.StringVar(&loads, "loads", "0.85", "offered loads (fractions of capacity) for most scenarios")
	fs.StringVar(&hetLoads, "het-loads", "0.5,0.7,0.85,1.0", "offered loads for the heterogeneous scenario")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "how long requests arrive in each run")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "requests started in the first this long are not counted")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "wait after a scenario's setup before the load starts")
	fs.DurationVar(&o.killAt, "kill-at", 20*time.Second, "agent-killed scenario: when the agent dies, after the load starts")
	fs.Uint64Var(&o.seed, "seed", 1, "first seed of the load and the random policies")
	fs.IntVar(&o.seeds, "seeds", 3, "seeds per cell (seed, seed+1, ...); means and spreads are over them")
	fs.DurationVar(&o.budget, "budget", 0, "stop starting runs after this long and report what ran (0: no limit; the estimate is printed first)")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan and its time estimate, run nothing")
	fs.StringVar(&o.markdown, "markdown", "", "write the report here (empty: stdout)")
	fs.StringVar(&o.plots, "plots", "", "write SVG plots into this directory (empty: none)")
	fs.StringVar(&o.eppBin, "epp", filepath.Join(cache, "reference", "epp"), "the GIE endpoint picker binary (make reference-tools)")
	fs.StringVar(&o.simBin, "llm-d-sim", filepath.Join(cache, "reference", "llm-d-inference-sim"), "the llm-d-inference-sim binary (make reference-tools)")
	fs.StringVar(&o.assets, "envtest-assets", envOr("KUBEBUILDER_ASSETS", filepath.Join(cache, "envtest")), "kube-apiserver and etcd for the EPP's control plane (make envtest-assets)")
	fs.StringVar(&o.logDir, "log-dir", "", "keep the EPP's and llm-d-inference-sim's output here (empty: discarded)")
	fs.StringVar(&variants, "variants", "", "name=file,...: headroom with another scoring configuration, run as the policy headroom@name; headroom@"+noDirect+" (built in) is headroom without its direct reads of servers whose agent is gone")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	if o.loads, err = parseLoads(loads); err == nil {
		o.hetLoads, err = parseLoads(hetLoads)
	}
	if err != nil {
		return o, err
	}
	if o.variants, err = parseVariants(variants); err != nil {
		return o, err
	}
	for _, p := range splitList(o.policies) {
		base, variant, _ := strings.Cut(p, "@")
		if !slices.Contains(cluster.Policies(), base) || (variant != "" && (base != cluster.PolicyHeadroom || (o.variants[variant] == "" && variant != noDirect))) {
			return o, fmt.Errorf("-policies: unknown policy %q (want one of %s, or headroom@name of -variants)", p, strings.Join(cluster.Policies(), ", "))
		}
	}
	if o.seeds < 1 || o.seeds > 20 {
		return o, fmt.Errorf("-seeds %d: want 1 to 20", o.seeds)
	}
	for _, s := range splitList(o.sims) {
		if s != simModelsim && s != simLLMD {
			return o, fmt.Errorf("-sims: unknown simulator %q (want %s or %s)", s, simModelsim, simLLMD)
		}
	}
	return o, nil
}

// parseVariants reads name=file pairs; each file must exist.
func parseVariants(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range splitList(s) {
		name, file, ok := strings.Cut(kv, "=")
		if !ok || name == "" || file == "" {
			return nil, fmt.Errorf("-variants %q: want name=file", kv)
		}
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("-variants %s: %w", name, err)
		}
		out[name] = file
	}
	return out, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
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
