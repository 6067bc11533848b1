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
	"github.com/headroom-dev/headroom/sim/cluster"
)

func report(o options, scs []scenario, results []result) error {
	cs := cells(results)
	var b strings.Builder
	fmt.Fprintf(&b, "Seeds per cell: %d (from %d), %s of arrivals per run, the first %s left out. Times are means over the seeds, the range in brackets.\n\n", o.seeds, o.seed, o.duration, o.warmup)
	table(&b, cs)
	versusEPP(&b, cs)
	goals(&b, cs)
	if o.plots != "" {
		if err := plots(o.plots, scs, cs); err != nil {
			return err
		}
	}
	if o.markdown == "" {
		_, err := io.WriteString(os.Stdout, b.String())
		return err
	}
	return os.WriteFile(o.markdown, []byte(b.String()), 0o644)
}

func table(w io.Writer, cs []cell) {
	fmt.Fprintln(w, "| Scenario | Sim | Load | Policy | Runs | TTFT p50 s | TTFT p90 s | TTFT p99 s | Done req/s | Failed | Minor classes' share (capacity share) | Slow pods' p90 s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range cs {
		load, tput := fmt.Sprintf("%.0f%% (%.1f req/s)", 100*c.load, c.rate), fmt.Sprintf("%.2f", c.tput.mean)
		if c.burst {
			load, tput = "burst", "—"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %d | %s | %s | %s | %s | %.0f | %s | %s |\n",
			c.scenario, c.sim, load, c.policy, c.runs, secs(c.p50, c.runs), secs(c.p90, c.runs), secs(c.p99, c.runs),
			tput, c.failed.mean, cellShares(c), slowP90(c))
	}
}

// slowP90 is the slow pods' own p90 TTFT, "—" where the servers do not
// say which of them answered.
func slowP90(c cell) string {
	s, ok := c.classP90["slow"]
	if !ok {
		return "—"
	}
	return secs(s, c.runs)
}

func cellShares(c cell) string {
	capMeans := map[string]float64{}
	for cl, s := range c.capShare {
		capMeans[cl] = s.mean
	}
	var parts []string
	for _, cl := range minorClasses(capMeans) {
		s := c.share[cl]
		parts = append(parts, fmt.Sprintf("%s %.1f%% (%.1f–%.1f; capacity %.1f%%)", cl, 100*s.mean, 100*s.lo, 100*s.hi, 100*capMeans[cl]))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// versusEPP prints every policy's figures as ratios of the EPP's in the
// same scenario, simulator and load: the headline numbers.
func versusEPP(w io.Writer, cs []cell) {
	var rows []string
	for _, c := range cs {
		if c.policy == cluster.PolicyEPP {
			continue
		}
		e, ok := find(cs, c.scenario, c.sim, cluster.PolicyEPP, c.load)
		if !ok {
			continue
		}
		pick, pick99 := "—", "—"
		if isHeadroom(c.policy) {
			pick = ratio(c.pick.mean, e.pick.mean)
			pick99 = fmt.Sprintf("%s (%.1f ms ÷ %.1f ms)", ratio(c.pickP99.mean, e.pickP99.mean), 1e3*c.pickP99.mean, 1e3*e.pickP99.mean)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", c.scenario, c.sim, loadName(c), c.policy,
			ratio(c.p50.mean, e.p50.mean), ratio(c.p90.mean, e.p90.mean), ratio(c.p99.mean, e.p99.mean), ratio(c.tput.mean, e.tput.mean), pick, pick99))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nAgainst the reference EPP in the same run (ratio of the means; below 1 is better for TTFT, above 1 for throughput; headroom only: the mean time the gateway waits for the whole request phase, and the p99 of the pick from the request headers sent to the destination received):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Scenario | Sim | Load | Policy | p50 ÷ EPP | p90 ÷ EPP | p99 ÷ EPP | throughput ÷ EPP | mean request phase ÷ EPP | pick p99 ÷ EPP |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintln(w, strings.Join(rows, "\n"))
}

// isHeadroom is true for headroom and its -variants.
func isHeadroom(policy string) bool {
	return policy == cluster.PolicyHeadroom || strings.HasPrefix(policy, cluster.PolicyHeadroom+"@")
}

func loadName(c cell) string {
	if c.burst {
		return "burst"
	}
	return fmt.Sprintf("%.0f%%", 100*c.load)
}

// goals checks issue 15's targets on each simulator and says plainly
// which were met; each is judged on the means.
func goals(w io.Writer, cs []cell) {
	fmt.Fprintln(w, "\nGoals (headroom against the EPP, means over the seeds):")
	for _, sim := range []string{simModelsim, simLLMD} {
		for _, load := range []float64{0.85, 1.0} {
			h, okH := find(cs, "heterogeneous", sim, cluster.PolicyHeadroom, load)
			e, okE := find(cs, "heterogeneous", sim, cluster.PolicyEPP, load)
			if !okH || !okE {
				continue
			}
			fmt.Fprintf(w, "- %s, heterogeneous at %.0f%%: p99 %s× the EPP's (goal ≤ 0.5: %s)", sim, 100*load, ratio(h.p99.mean, e.p99.mean), met(h.p99.mean <= 0.5*e.p99.mean))
			if load == 1.0 {
				fmt.Fprintf(w, "; p90 %s× (goal ≤ 0.6: %s)", ratio(h.p90.mean, e.p90.mean), met(h.p90.mean <= 0.6*e.p90.mean))
			}
			fmt.Fprintf(w, "; throughput %s× (goal ≥ 1, within 2%%: %s)", ratio(h.tput.mean, e.tput.mean), met(h.tput.mean >= 0.98*e.tput.mean))
			fmt.Fprintf(w, "; pick p99 %s× (goal ≤ 0.2: %s)", ratio(h.pickP99.mean, e.pickP99.mean), met(h.pickP99.mean <= 0.2*e.pickP99.mean))
			if s, ok := h.share["slow"]; ok {
				d := 100 * (s.mean - h.capShare["slow"].mean)
				fmt.Fprintf(w, "; slow pods' share %.1f%% against a capacity share of %.1f%% (goal within ±2 points: %s)", 100*s.mean, 100*h.capShare["slow"].mean, met(math.Abs(d) <= 2))
			}
			fmt.Fprintln(w)
		}
		for _, sc := range []string{"homogeneous", "shared-prefix", "lora", "stale", "agent-killed"} {
			h, okH := find(cs, sc, sim, cluster.PolicyHeadroom, 0.85)
			e, okE := find(cs, sc, sim, cluster.PolicyEPP, 0.85)
			if !okH || !okE {
				continue
			}
			fmt.Fprintf(w, "- %s, %s at 85%%: p90 %.2f s against the EPP's %.2f s, p99 %.2f s against %.2f s (goal: no worse beyond the spread: %s)\n",
				sim, sc, h.p90.mean, e.p90.mean, h.p99.mean, e.p99.mean, met(noWorse(h.p90, e.p90) && noWorse(h.p99, e.p99)))
		}
	}
}

// noWorse holds when h's mean is at most e's plus the larger of the two
// half-ranges: within the spread the runs measured.
func noWorse(h, e stat) bool { return h.mean <= e.mean+math.Max(h.halfRange(), e.halfRange()) }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

// plots draws p90 and p99 TTFT and throughput against offered load, means
// over the seeds, for every scenario and simulator run at more than one
// load; the EPP is one of the lines.
func plots(dir string, scs []scenario, cs []cell) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, sc := range scs {
		for _, sim := range sc.sims() {
			loads := loadsOf(cs, sc.name, sim)
			if len(loads) < 2 {
				continue
			}
			what := sc.desc + ", " + sim
			charts := map[string]svgplot.Chart{
				"ttft-p90":   {Title: "p90 TTFT, " + what, XLabel: "offered load (% of capacity)", YLabel: "p90 time to first token (s)"},
				"ttft-p99":   {Title: "p99 TTFT, " + what, XLabel: "offered load (% of capacity)", YLabel: "p99 time to first token (s)"},
				"throughput": {Title: "Throughput, " + what, XLabel: "offered load (% of capacity)", YLabel: "completed requests per second"},
			}
			value := map[string]func(cell) float64{
				"ttft-p90": func(c cell) float64 { return c.p90.mean }, "ttft-p99": func(c cell) float64 { return c.p99.mean },
				"throughput": func(c cell) float64 { return c.tput.mean },
			}
			for name, ch := range charts {
				for _, p := range policiesIn(cs, sc.name, sim) {
					s := svgplot.Series{Name: p}
					for _, l := range loads {
						y := math.NaN()
						if c, ok := find(cs, sc.name, sim, p, l); ok {
							y = value[name](c)
						}
						s.X, s.Y = append(s.X, 100*l), append(s.Y, y)
					}
					ch.Series = append(ch.Series, s)
				}
				if err := writeChart(filepath.Join(dir, fmt.Sprintf("routing-%s-%s-%s.svg", sc.name, sim, name)), ch); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func loadsOf(cs []cell, scenario, sim string) []float64 {
	var out []float64
	for _, c := range cs {
		if c.scenario == scenario && c.sim == sim && !containsLoad(out, c.load) {
			out = append(out, c.load)
		}
	}
	return out
}

func containsLoad(ls []float64, l float64) bool {
	for _, x := range ls {
		if math.Abs(x-l) < 1e-9 {
			return true
		}
	}
	return false
}

func policiesIn(cs []cell, scenario, sim string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range cs {
		if c.scenario == scenario && c.sim == sim && !seen[c.policy] {
			seen[c.policy] = true
			out = append(out, c.policy)
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
