//go:build cgo

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// result is one (scenario, policy, load) run.
type result struct {
	scenario, policy string
	load             float64
	// rate is the offered rate in requests per second; capacity the
	// pool's analytic capacity.
	rate, capacity float64
	sum            loadgen.Summary
	// maxShare is the busiest server's requests over its fair share.
	maxShare float64
	servers  int
	// picker counts the gateway's calls to the picker that failed.
	pickerErrors uint64
}

// runOne starts a fresh cluster for the scenario and policy, offers load
// (or a burst), and summarises what the clients saw.
func runOne(ctx context.Context, o options, sc scenario, policy string, load float64) (result, error) {
	co := cluster.DefaultOptions()
	co.Nodes, co.Policy, co.Seed = sc.nodes, policy, o.seed
	c, err := cluster.StartReady(ctx, co, 30*time.Second)
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
	mp, mo := mix.Means()
	r := result{scenario: sc.name, policy: policy, load: load, capacity: c.Capacity(mp, mo), servers: len(c.Endpoints())}
	lo := loadgen.DefaultOptions()
	lo.URL, lo.Model, lo.Mix, lo.Seed, lo.Duration = c.URL, co.Model, mix, o.seed, o.duration
	lo.Rate = load * r.capacity
	if sc.burst > 0 {
		lo.Rate = 1 // unused by Burst
	}
	r.rate = lo.Rate
	g, err := loadgen.New(lo)
	if err != nil {
		return result{}, err
	}
	var recs []loadgen.Record
	skip := o.warmup
	if sc.burst > 0 {
		recs, skip = g.Burst(ctx, sc.burst, nil), 0
	} else {
		recs = g.Run(ctx, nil)
	}
	r.sum = loadgen.Summarize(recs, skip)
	r.maxShare = loadgen.MaxShare(r.sum.PerServer, r.servers)
	r.pickerErrors = c.Gateway.Stats().PickerErrors
	return r, nil
}

func (r result) String() string {
	return fmt.Sprintf("%-13s %-13s load %3.0f%% (%5.1f req/s): ok %4d failed %3d  TTFT p50 %6.3fs p90 %6.3fs p99 %6.3fs  latency p90 %6.2fs  %5.2f req/s  max share %.2f",
		r.scenario, r.policy, 100*r.load, r.rate, r.sum.OK, r.sum.Failed,
		r.sum.TTFT.P50.Seconds(), r.sum.TTFT.P90.Seconds(), r.sum.TTFT.P99.Seconds(),
		r.sum.Latency.P90.Seconds(), r.sum.Throughput, r.maxShare)
}
