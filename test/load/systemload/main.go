//go:build cgo

// Command systemload measures the demo system's own cost: how many
// requests per second the gateway and the pickers carry on this machine,
// the CPU each request costs, and the picker's share of each request's
// latency. Requests are tiny (32 prompt tokens, 2 output tokens) so the
// simulated GPUs are never the bottleneck; each rate is run under
// round-robin (the gateway alone) and headroom (the gateway asking the
// pickers over ext_proc), on the same cluster shape, in the same run.
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
	"github.com/headroom-dev/headroom/sim/loadgen"
)

func main() {
	rates := flag.String("rates", "100,200,400,600,800", "offered rates, requests per second")
	duration := flag.Duration("duration", 10*time.Second, "how long each rate runs")
	nodes := flag.Int("nodes", 3, "simulated nodes of 8 H100s")
	policies := flag.String("policies", "round-robin,headroom", "policies to compare")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *rates, *duration, *nodes, strings.Split(*policies, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "systemload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rates string, d time.Duration, nodes int, policies []string) error {
	var rs []float64
	for _, f := range strings.Split(rates, ",") {
		r, err := strconv.ParseFloat(f, 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("rate %q", f)
		}
		rs = append(rs, r)
	}
	fmt.Println("| Policy | Offered req/s | Done req/s | Failed | Latency p50 | Latency p99 | TTFT p50 | Picker decision (mean) | Cores used | Idle cores | CPU per request above idle |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, p := range policies {
		if err := runPolicy(ctx, p, rs, d, nodes); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func runPolicy(ctx context.Context, policy string, rates []float64, d time.Duration, nodes int) error {
	o := cluster.DefaultOptions()
	o.Policy, o.Nodes = policy, nil
	for range nodes {
		o.Nodes = append(o.Nodes, cluster.NodeSpec{System: "dgxh100", Server: "h100"})
	}
	c, err := cluster.StartReady(ctx, o, time.Minute)
	if err != nil {
		return err
	}
	defer c.Close()
	// The system's own background (agents sampling and scraping, reports
	// streaming to the pickers) with no requests, to subtract.
	b0, w0 := cpuSeconds(), time.Now()
	time.Sleep(5 * time.Second)
	idle := (cpuSeconds() - b0) / time.Since(w0).Seconds()
	for _, rate := range rates {
		lo := loadgen.DefaultOptions()
		lo.URL, lo.Rate, lo.Duration, lo.Drain, lo.Timeout = c.URL, rate, d, 10*time.Second, 10*time.Second
		lo.Mix = loadgen.Mix{PromptMedian: 32, PromptMin: 32, PromptMax: 32, OutputMedian: 2, OutputMin: 2, OutputMax: 2}
		g, err := loadgen.New(lo)
		if err != nil {
			return err
		}
		before, st0, t0 := cpuSeconds(), c.Gateway.Stats(), time.Now()
		recs := g.Run(ctx, nil)
		cpu, wall, st1 := cpuSeconds()-before, time.Since(t0), c.Gateway.Stats()
		s := loadgen.Summarize(recs, time.Second)
		decision := "—"
		if n := st1.Decisions - st0.Decisions; n > 0 {
			decision = fmt.Sprintf("%.2f ms", float64(st1.DecisionTime-st0.DecisionTime)/float64(n)/1e6)
		}
		above := (cpu - idle*wall.Seconds()) / float64(max(len(recs), 1))
		fmt.Printf("| %s | %.0f | %.0f | %d | %.1f ms | %.1f ms | %.1f ms | %s | %.2f | %.2f | %.2f ms |\n", policy, rate, s.Throughput, s.Failed,
			ms(s.Latency.P50), ms(s.Latency.P99), ms(s.TTFT.P50), decision, cpu/wall.Seconds(), idle, 1000*above)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// cpuSeconds is the process's user and system CPU time so far: the whole
// system (clients, gateway, pickers, agents, servers) runs in it.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
