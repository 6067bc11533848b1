//go:build cgo

package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/headroom-dev/headroom/internal/svgplot"
)

func report(o options, scs []scenario, results []result) error {
	var b strings.Builder
	table(&b, results)
	goals(&b, results)
	if o.plots != "" {
		if err := plots(o.plots, scs, results); err != nil {
			return err
		}
	}
	if o.markdown == "" {
		_, err := io.WriteString(os.Stdout, b.String())
		return err
	}
	return os.WriteFile(o.markdown, []byte(b.String()), 0o644)
}

func table(w io.Writer, results []result) {
	fmt.Fprintln(w, "| Scenario | Load | Policy | Offered req/s | Done req/s | TTFT p50 | TTFT p90 | TTFT p99 | Latency p50 | Latency p90 | Failed | Max share |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		load := fmt.Sprintf("%.0f%%", 100*r.load)
		offered, done := fmt.Sprintf("%.1f", r.rate), fmt.Sprintf("%.2f", r.sum.Throughput)
		if r.load == 0 {
			load, offered, done = "burst", fmt.Sprintf("%d at once", r.sum.Requests), "—"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %.2f s | %.2f s | %.2f s | %.2f s | %.2f s | %d | %.2f |\n",
			r.scenario, load, r.policy, offered, done,
			r.sum.TTFT.P50.Seconds(), r.sum.TTFT.P90.Seconds(), r.sum.TTFT.P99.Seconds(),
			r.sum.Latency.P50.Seconds(), r.sum.Latency.P90.Seconds(), r.sum.Failed, r.maxShare)
	}
}

func find(results []result, scenario, policy string, load float64) (result, bool) {
	for _, r := range results {
		if r.scenario == scenario && r.policy == policy && math.Abs(r.load-load) < 1e-9 {
			return r, true
		}
	}
	return result{}, false
}

// goals checks the targets and says plainly which were met.
func goals(w io.Writer, results []result) {
	fmt.Fprintln(w, "\nGoals:")
	h, okH := find(results, "heterogeneous", "headroom", 0.85)
	rr, okR := find(results, "heterogeneous", "round-robin", 0.85)
	qk, okQ := find(results, "heterogeneous", "queue-kv", 0.85)
	if okH && okR && okQ {
		vsRR := 1 - h.sum.TTFT.P90.Seconds()/rr.sum.TTFT.P90.Seconds()
		vsQK := 1 - h.sum.TTFT.P90.Seconds()/qk.sum.TTFT.P90.Seconds()
		tput := h.sum.Throughput / rr.sum.Throughput
		fmt.Fprintf(w, "- heterogeneous at 85%%: headroom's p90 TTFT is %.0f%% below round-robin (goal ≥ 40%%: %s) and %.0f%% below queue+KV (goal ≥ 10%%: %s); throughput %.2f× round-robin's (goal: no less, within 5%%: %s)\n",
			100*vsRR, met(vsRR >= 0.4), 100*vsQK, met(vsQK >= 0.1), tput, met(tput >= 0.95))
	}
	if b, ok := find(results, "burst", "headroom", 0); ok {
		fmt.Fprintf(w, "- burst of %d: the busiest server got %.2f× its fair share under headroom (goal ≤ 2×: %s)\n", b.sum.Requests, b.maxShare, met(b.maxShare <= 2))
	}
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// plots draws p90 TTFT and throughput against offered load for every
// scenario run at more than one load.
func plots(dir string, scs []scenario, results []result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, sc := range scs {
		if len(sc.loads) < 2 {
			continue
		}
		ttft := svgplot.Chart{Title: "p90 TTFT, " + sc.desc, XLabel: "offered load (% of capacity)", YLabel: "p90 time to first token (s)"}
		tput := svgplot.Chart{Title: "Throughput, " + sc.desc, XLabel: "offered load (% of capacity)", YLabel: "completed requests per second"}
		for _, p := range policiesIn(results, sc.name) {
			st, su := svgplot.Series{Name: p}, svgplot.Series{Name: p}
			for _, l := range sc.loads {
				r, ok := find(results, sc.name, p, l)
				y1, y2 := math.NaN(), math.NaN()
				if ok {
					y1, y2 = r.sum.TTFT.P90.Seconds(), r.sum.Throughput
				}
				st.X, st.Y = append(st.X, 100*l), append(st.Y, y1)
				su.X, su.Y = append(su.X, 100*l), append(su.Y, y2)
			}
			ttft.Series, tput.Series = append(ttft.Series, st), append(tput.Series, su)
		}
		for name, c := range map[string]svgplot.Chart{"ttft-p90": ttft, "throughput": tput} {
			if err := writeChart(filepath.Join(dir, fmt.Sprintf("routing-%s-%s.svg", sc.name, name)), c); err != nil {
				return err
			}
		}
	}
	return nil
}

func policiesIn(results []result, scenario string) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range results {
		if r.scenario == scenario && !seen[r.policy] {
			seen[r.policy] = true
			out = append(out, r.policy)
		}
	}
	return out
}

func writeChart(path string, c svgplot.Chart) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.Write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
