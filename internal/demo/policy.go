//go:build cgo

package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// policyResult is what the load saw under one policy.
type policyResult struct {
	policy string
	rate   float64
	sum    loadgen.Summary
}

// runPolicy starts a fresh cluster routed by policy, offers the load while
// the view draws, and summarises it.
func runPolicy(ctx context.Context, o Options, specs []cluster.NodeSpec, policy string, out io.Writer, tty bool, logger *slog.Logger) (policyResult, error) {
	co := cluster.DefaultOptions()
	co.Nodes, co.Policy, co.Pickers, co.Seed, co.Logger = specs, policy, o.Pickers, o.Seed, logger
	c, err := cluster.StartReady(ctx, co, 30*time.Second)
	if err != nil {
		return policyResult{}, err
	}
	defer c.Close()
	throttle(c, o.Throttled)
	mix := loadgen.ShareGPT()
	// Outputs capped at 256 tokens (not 512) so the last responses, and
	// the demo, end within about a minute.
	mix.OutputMax = 256
	mp, mo := mix.Means()
	lo := loadgen.DefaultOptions()
	lo.URL, lo.Model, lo.Mix, lo.Seed, lo.Duration = c.URL, co.Model, mix, o.Seed, o.Duration
	lo.Rate, lo.Drain = o.Load*c.Capacity(mp, mo), 30*time.Second
	g, err := loadgen.New(lo)
	if err != nil {
		return policyResult{}, err
	}
	v := &view{out: out, tty: tty, c: c, g: g, policy: policy, rate: lo.Rate, total: o.Duration, start: time.Now()}
	var recs []loadgen.Record
	done := make(chan struct{})
	go func() {
		recs = g.Run(ctx, func(r loadgen.Record) { v.count(r) })
		close(done)
	}()
	t := time.NewTicker(o.Refresh)
	defer t.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-t.C:
			v.draw()
		}
	}
	v.draw()
	sum := loadgen.Summarize(recs, warmup(o))
	return policyResult{policy: policy, rate: lo.Rate, sum: sum}, nil
}

// warmup is the start of each run left out of its numbers.
func warmup(o Options) time.Duration { return min(3*time.Second, o.Duration/4) }

// throttle halves the speed of n GPUs, spread over the nodes.
func throttle(c *cluster.Cluster, n int) {
	servers := c.Servers()
	for i := range min(n, len(servers)) {
		servers[(i*len(servers)/max(n, 1)+3)%len(servers)].Throttle(2)
	}
}

// counters are the load's running totals for the view.
type counters struct{ done, failed atomic.Int64 }

func (v *view) count(r loadgen.Record) {
	v.n.done.Add(1)
	if !r.OK() {
		v.n.failed.Add(1)
	}
}

func summary(out io.Writer, o Options, results []policyResult) {
	if len(results) == 0 {
		return
	}
	fmt.Fprintf(out, "\nSummary: %s, %.0f%% of capacity (%.1f requests/s), %s per policy, ShareGPT-like lengths; first %s not counted\n\n",
		o.Nodes, 100*o.Load, results[0].rate, o.Duration, warmup(o))
	fmt.Fprintf(out, "%-14s %8s %8s %8s %9s %9s %9s %9s %9s %9s\n", "policy", "req/s", "done", "failed", "TTFT p50", "TTFT p90", "TTFT p99", "lat p50", "lat p90", "lat p99")
	for _, r := range results {
		s := r.sum
		fmt.Fprintf(out, "%-14s %8.2f %8d %8d %8.2fs %8.2fs %8.2fs %8.2fs %8.2fs %8.2fs\n", r.policy, s.Throughput, s.OK, s.Failed,
			s.TTFT.P50.Seconds(), s.TTFT.P90.Seconds(), s.TTFT.P99.Seconds(),
			s.Latency.P50.Seconds(), s.Latency.P90.Seconds(), s.Latency.P99.Seconds())
	}
	fmt.Fprintln(out, "The routing benchmark runs more scenarios and loads: make bench-routing (docs/benchmarks.md).")
}
