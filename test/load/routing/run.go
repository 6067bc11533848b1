//go:build cgo

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/gateway"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// noDirect is the built-in variant headroom@nodirect: the default scoring
// without the pickers' direct reads of servers whose agent is gone.
const noDirect = "nodirect"

// key names a cell: one scenario on one simulator at one load under one
// policy. Its runs differ by seed.
type key struct {
	scenario, sim, policy string
	load                  float64
}

// result is one run of a cell.
type result struct {
	key
	seed uint64
	// rate is the offered rate in requests per second; capacity the
	// pool's analytic capacity.
	rate, capacity float64
	sum            loadgen.Summary
	// share is each pod class's share of the requests routed after the
	// warm-up; capShare its share of the pool's capacity.
	share, capShare map[string]float64
	// classTTFT is the TTFT of the requests each class served (only where
	// the servers name themselves in X-Served-By: sim/modelsim).
	classTTFT map[string]loadgen.Quantiles
	// pick is the mean time the gateway waited for a picker's decision
	// (ext_proc policies only), headers and body; pickTimes the picks
	// after the warm-up from the request headers sent to the destination
	// received.
	pick      time.Duration
	pickTimes gateway.PickTimes
	// pickerErrors counts the gateway's calls to a picker that failed.
	pickerErrors uint64
}

// planned is one run to make.
type planned struct {
	sc   scenario
	k    key
	seed uint64
}

// runPlan is every run in order: per scenario, simulator, load and seed,
// the policies back to back, so that a cell's policies see the same
// arrivals close in time.
func runPlan(o options, scs []scenario, policies []string) []planned {
	var plan []planned
	for _, sc := range scs {
		for _, sim := range splitList(o.sims) {
			if !slices.Contains(sc.sims(), sim) {
				continue
			}
			for _, load := range sc.loadsFor(o) {
				for i := range o.seeds {
					for _, p := range policies {
						plan = append(plan, planned{sc, key{sc.name, sim, p, load}, o.seed + uint64(i)})
					}
				}
			}
		}
	}
	return plan
}

func run(ctx context.Context, o options) error {
	scs, err := pick(scenarios(o), o.scenarios)
	if err != nil {
		return err
	}
	policies := splitList(o.policies)
	plan := runPlan(o, scs, policies)
	if len(plan) == 0 {
		return errors.New("nothing to run: no scenario runs on the chosen simulators")
	}
	perRun := o.duration + o.settle + 30*time.Second // start, drain and stop, measured on the 2-core VM
	fmt.Fprintf(os.Stderr, "routing: %d runs, about %s each: about %s in all%s\n", len(plan), perRun, (time.Duration(len(plan)) * perRun).Round(time.Minute), budgetNote(o.budget))
	if o.dryRun {
		for _, r := range plan {
			fmt.Fprintf(os.Stderr, "  %s %s %s %.0f%% seed %d\n", r.k.scenario, r.k.sim, r.k.policy, 100*r.k.load, r.seed)
		}
		return nil
	}
	refs, err := startRefs(o, policies)
	if err != nil {
		return err
	}
	defer refs.stop()
	var results []result
	start := time.Now()
	for i, r := range plan {
		if o.budget > 0 && time.Since(start) > o.budget {
			fmt.Fprintf(os.Stderr, "routing: budget of %s spent after %d of %d runs; reporting those\n", o.budget, i, len(plan))
			break
		}
		res, err := runOne(ctx, o, refs, r.sc, r.k, r.seed)
		if err != nil {
			return fmt.Errorf("%s/%s/%s/%.2f seed %d: %w", r.k.scenario, r.k.sim, r.k.policy, r.k.load, r.seed, err)
		}
		fmt.Fprintf(os.Stderr, "[%s %d/%d] %s\n", time.Since(start).Round(time.Second), i+1, len(plan), res)
		results = append(results, res)
	}
	return report(o, scs, results)
}

func budgetNote(b time.Duration) string {
	if b <= 0 {
		return ""
	}
	return fmt.Sprintf(" (budget %s)", b)
}

// runOne starts a fresh cluster for the cell and seed, offers load (or a
// burst), and summarises what the clients saw.
func runOne(ctx context.Context, o options, refs *refs, sc scenario, k key, seed uint64) (result, error) {
	co := cluster.DefaultOptions()
	policy, variant, _ := strings.Cut(k.policy, "@")
	co.Nodes, co.Policy, co.Seed, co.SharedPort = sc.nodes, policy, seed, true
	co.ScoringConfig = o.variants[variant]
	co.NoDirectScrape = variant == noDirect
	co.EPP = refs.epp
	if k.sim == simLLMD {
		co.Backend = refs.llmd
	}
	c, err := cluster.StartReady(ctx, co, time.Minute)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	if sc.setup != nil {
		sc.setup(c)
	}
	// Let the agents report the change (and a stopped agent's node go
	// stale) before the load starts.
	time.Sleep(o.settle)

	mix := loadgen.ShareGPT()
	// Capacity counts every prompt token as prefilled: with shared
	// prefixes the pool can do more.
	mp, mo := sc.conv.Means(mix)
	r := result{key: k, seed: seed, capacity: c.Capacity(mp, mo)}
	lo := loadgen.DefaultOptions()
	lo.URL, lo.Model, lo.Mix, lo.Seed, lo.Duration = c.URL, co.Model, mix, seed, o.duration
	lo.Conversations = sc.conv
	if len(sc.adapters) > 0 {
		lo.Adapters, lo.AdapterShare = sc.adapters, 0.75
	}
	lo.Rate = k.load * r.capacity
	if sc.burst > 0 {
		lo.Rate = 1 // unused by Burst
	}
	r.rate = lo.Rate
	g, err := loadgen.New(lo)
	if err != nil {
		return result{}, err
	}
	// The routing counts at the end of the warm-up, to leave it out of
	// the class shares.
	var atWarmup gateway.Stats
	warm := time.AfterFunc(o.warmup, func() { atWarmup = c.Gateway.Stats() })
	if sc.during != nil {
		stopDuring := sc.during(o, c)
		defer stopDuring()
	}
	var recs []loadgen.Record
	skip := o.warmup
	if sc.burst > 0 {
		warm.Stop()
		recs, skip = g.Burst(ctx, sc.burst, nil), 0
	} else {
		recs = g.Run(ctx, nil)
	}
	if ctx.Err() != nil {
		return result{}, ctx.Err()
	}
	end := c.Gateway.Stats()
	r.sum = loadgen.Summarize(recs, skip)
	r.share, r.capShare = classShares(c, atWarmup, end, mp, mo)
	r.classTTFT = classTTFT(c, recs, skip)
	if end.Decisions > 0 {
		r.pick = end.DecisionTime / time.Duration(end.Decisions)
	}
	r.pickerErrors = end.PickerErrors
	r.pickTimes = end.PickTimes.Since(atWarmup.PickTimes)
	return r, nil
}

func (r result) String() string {
	return fmt.Sprintf("%-13s %-8s %-13s load %3.0f%% seed %d (%5.1f req/s): ok %4d failed %3d  TTFT p50 %6.3fs p90 %6.3fs p99 %6.3fs  %5.2f req/s  shares %s",
		r.scenario, r.sim, r.policy, 100*r.load, r.seed, r.rate, r.sum.OK, r.sum.Failed,
		r.sum.TTFT.P50.Seconds(), r.sum.TTFT.P90.Seconds(), r.sum.TTFT.P99.Seconds(),
		r.sum.Throughput, formatShares(r.share, r.capShare))
}
