//go:build cgo

package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/sim/loadgen"
)

func TestCellsAreMeansOverSeeds(t *testing.T) {
	t.Parallel()
	k := key{scenario: "heterogeneous", sim: simModelsim, policy: "epp", load: 0.85}
	run := func(seed uint64, p90 time.Duration, slow float64) result {
		return result{key: k, seed: seed, sum: loadgen.Summary{TTFT: loadgen.Quantiles{P90: p90}, Throughput: 10},
			share: map[string]float64{"h100": 1 - slow, "slow": slow}, capShare: map[string]float64{"h100": 0.93, "slow": 0.07}}
	}
	cs := cells([]result{run(1, time.Second, 0.05), run(2, 2*time.Second, 0.07), run(3, 3*time.Second, 0.09)})
	if len(cs) != 1 || cs[0].runs != 3 {
		t.Fatalf("cells %+v", cs)
	}
	c := cs[0]
	if c.p90.mean != 2 || c.p90.lo != 1 || c.p90.hi != 3 || c.p90.halfRange() != 1 {
		t.Errorf("p90 %+v, want mean 2 over 1..3", c.p90)
	}
	if math.Abs(c.share["slow"].mean-0.07) > 1e-9 {
		t.Errorf("slow share %+v", c.share["slow"])
	}
	if got := cellShares(c); !strings.Contains(got, "slow 7.0% (5.0–9.0; capacity 7.0%)") {
		t.Errorf("shares %q", got)
	}
	if got := secs(c.p90, c.runs); got != "2.00 (1.00–3.00)" {
		t.Errorf("secs = %q", got)
	}
}

func TestNoWorseWithinSpread(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		h, e stat
		want bool
	}{
		{"better", stat{1, 0.9, 1.1}, stat{2, 1.8, 2.2}, true},
		{"worse inside the EPP's spread", stat{2.1, 2.05, 2.15}, stat{2, 1.7, 2.3}, true},
		{"worse inside its own spread", stat{2.2, 1.8, 2.6}, stat{2, 1.95, 2.05}, true},
		{"worse beyond both", stat{3, 2.9, 3.1}, stat{2, 1.9, 2.1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := noWorse(tc.h, tc.e); got != tc.want {
				t.Errorf("noWorse(%+v, %+v) = %v", tc.h, tc.e, got)
			}
		})
	}
}

func TestRunPlanPairsPoliciesPerSeed(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"-scenarios", "heterogeneous,throttled", "-het-loads", "0.85,1.0", "-seeds", "2", "-policies", "epp,headroom"})
	if err != nil {
		t.Fatal(err)
	}
	scs, err := pick(scenarios(o), o.scenarios)
	if err != nil {
		t.Fatal(err)
	}
	plan := runPlan(o, scs, splitList(o.policies))
	// heterogeneous: 2 sims × 2 loads × 2 seeds × 2 policies; throttled:
	// modelsim only, 1 load × 2 seeds × 2 policies.
	if len(plan) != 16+4 {
		t.Fatalf("%d runs planned, want 20", len(plan))
	}
	if plan[0].k.policy != "epp" || plan[1].k.policy != "headroom" || plan[0].seed != plan[1].seed || plan[2].seed == plan[0].seed {
		t.Errorf("policies should run back to back on one seed: %+v %+v %+v", plan[0], plan[1], plan[2])
	}
	for _, p := range plan[16:] {
		if p.k.sim != simModelsim {
			t.Errorf("throttled planned on %s", p.k.sim)
		}
	}
	if _, err := parseFlags([]string{"-sims", "vllm"}); err == nil {
		t.Error("an unknown simulator was accepted")
	}
}

// A headroom@name policy needs its -variants file; other policies take
// no variant, and an unknown policy is refused.
func TestVariantPolicies(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "mix.yaml")
	if err := os.WriteFile(cfg, []byte("scorers:\n  expected-wait: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"variant with its file", []string{"-policies", "epp,headroom@mix", "-variants", "mix=" + cfg}, true},
		{"variant without -variants", []string{"-policies", "headroom@mix"}, false},
		{"variant of another policy", []string{"-policies", "epp@mix", "-variants", "mix=" + cfg}, false},
		{"missing file", []string{"-policies", "headroom@mix", "-variants", "mix=" + cfg + ".gone"}, false},
		{"malformed variant", []string{"-variants", "mix"}, false},
		{"unknown policy", []string{"-policies", "fastest"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if (err == nil) != tc.ok {
				t.Fatalf("parseFlags(%q): err %v, want ok %v", tc.args, err, tc.ok)
			}
			if tc.ok && o.variants["mix"] != cfg {
				t.Fatalf("variants %v, want mix=%s", o.variants, cfg)
			}
		})
	}
}
