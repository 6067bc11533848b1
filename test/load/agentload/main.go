// Command agentload measures a running headroom-agent the way the agent
// benchmark in docs/benchmarks.md asks: it starts the agent on simulated
// GPUs, scrapes it like Prometheus, and reports the agent's RSS, its CPU
// use, and /metrics latency percentiles.
//
//	go run ./test/load/agentload --agent=bin/headroom-agent
package main

import (
	"context"
	"flag"
	"fmt"
	"github.com/headroom-dev/headroom/test/load/loadutil"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"
)

type options struct {
	agent      string
	processes  int
	interval   time.Duration
	steady     time.Duration
	promEvery  time.Duration
	scrapes    int
	scrapeRate float64
	verbose    bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("agentload", flag.ExitOnError)
	fs.StringVar(&o.agent, "agent", "bin/headroom-agent", "headroom-agent binary")
	fs.IntVar(&o.processes, "processes", 100, "processes per simulated GPU (8 GPUs)")
	fs.DurationVar(&o.interval, "interval", time.Second, "agent sample interval")
	fs.DurationVar(&o.steady, "steady", 2*time.Minute, "length of the Prometheus-like phase")
	fs.DurationVar(&o.promEvery, "prom-interval", 15*time.Second, "scrape interval in the Prometheus-like phase")
	fs.IntVar(&o.scrapes, "scrapes", 600, "scrapes in the latency phase")
	fs.Float64Var(&o.scrapeRate, "scrape-rate", 10, "scrapes per second in the latency phase")
	fs.BoolVar(&o.verbose, "v", false, "print every scrape's latency")
	_ = fs.Parse(os.Args[1:])
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "agentload:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	port, err := loadutil.FreePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(o.agent, "--gpu-backend=sim", "--sim-profile=dgxh100",
		"--sim-processes="+strconv.Itoa(o.processes), "--sample-interval="+o.interval.String(),
		"--listen-address="+addr, "--log-level=warn", "--node-name=load")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	url := "http://" + addr
	if err := loadutil.WaitReady(url+"/readyz", 30*time.Second); err != nil {
		return err
	}
	time.Sleep(3 * o.interval) // let GPM and the caches settle
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableCompression: true}}

	fmt.Printf("agent: 8 simulated H100 GPUs x %d processes, sampled every %s\n\n", o.processes, o.interval)
	steady, err := phase(pid, o.steady, o.promEvery, client, url, -1)
	if err != nil {
		return err
	}
	// The first two scrapes of a format are rendered in the scrape: the agent
	// learns a scraper's period from them and pre-renders after that.
	if len(steady.latencies) > 2 {
		fmt.Printf("first two scrapes (format and period not yet known): %s, %s\n",
			steady.latencies[0].Round(time.Microsecond), steady.latencies[1].Round(time.Microsecond))
		steady.latencies = steady.latencies[2:]
	}
	report("prometheus-like", fmt.Sprintf("one scrape every %s for %s, after the first two", o.promEvery, o.steady), steady, o.verbose)
	every := time.Duration(float64(time.Second) / o.scrapeRate)
	lat, err := phase(pid, time.Duration(o.scrapes)*every, every, client, url, o.scrapes)
	if err != nil {
		return err
	}
	report("latency", fmt.Sprintf("%d scrapes at %.0f/s", o.scrapes, o.scrapeRate), lat, o.verbose)
	return nil
}

// result is what one phase measured.
type result struct {
	cpuPct    float64
	rssMaxMiB float64
	latencies []time.Duration
	bodyBytes int
}

// phase scrapes every `every` for d (or n scrapes), sampling RSS each
// second, and returns the agent's CPU share over the phase.
func phase(pid int, d, every time.Duration, c *http.Client, url string, n int) (result, error) {
	var r result
	cpu0, err := loadutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	start := time.Now()
	scrapeT, rssT := time.NewTicker(every), time.NewTicker(time.Second)
	defer scrapeT.Stop()
	defer rssT.Stop()
	end := time.After(d)
	for loop := true; loop; {
		select {
		case <-end:
			loop = false
		case <-rssT.C:
			if rss, err := loadutil.RSSMiB(pid); err == nil {
				r.rssMaxMiB = max(r.rssMaxMiB, rss)
			}
		case <-scrapeT.C:
			lat, size, err := scrape(c, url+"/metrics")
			if err != nil {
				return r, err
			}
			r.latencies = append(r.latencies, lat)
			r.bodyBytes = size
			if n > 0 && len(r.latencies) >= n {
				loop = false
			}
		}
	}
	cpu1, err := loadutil.CPUSeconds(pid)
	if err != nil {
		return r, err
	}
	r.cpuPct = 100 * (cpu1 - cpu0) / time.Since(start).Seconds()
	if rss, err := loadutil.RSSMiB(pid); err == nil {
		r.rssMaxMiB = max(r.rssMaxMiB, rss)
	}
	return r, nil
}

// scrape fetches /metrics as Prometheus 2 asks for it (OpenMetrics, gzip).
func scrape(c *http.Client, url string) (time.Duration, int, error) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	req.Header.Set("Accept-Encoding", "gzip")
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("scrape: status %d, %v", resp.StatusCode, err)
	}
	return lat, int(n), nil
}

func report(name, what string, r result, verbose bool) {
	if verbose {
		fmt.Println(name, "latencies:", r.latencies)
	}
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	q := func(p float64) time.Duration {
		if len(l) == 0 {
			return 0
		}
		return l[min(len(l)-1, int(p*float64(len(l))))]
	}
	fmt.Printf("%-16s %s\n", name+":", what)
	fmt.Printf("  agent CPU        %.2f%% of one core\n", r.cpuPct)
	fmt.Printf("  agent RSS (max)  %.1f MiB\n", r.rssMaxMiB)
	fmt.Printf("  /metrics         p50 %s  p90 %s  p99 %s  max %s  (%d scrapes, %d gzip bytes)\n\n",
		q(0.5).Round(time.Microsecond), q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond),
		q(1).Round(time.Microsecond), len(l), r.bodyBytes)
}
