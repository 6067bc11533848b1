//go:build cgo

package gonvml_test

import (
	"math"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/snapshot"
)

// TestMemoryHealthStates injects distinct ECC and row-remap states on four
// GPUs and reads them back through the adapter: every counter has its own
// value, so a corrected/uncorrected or volatile/aggregate mix-up shows.
func TestMemoryHealthStates(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxh100")
	r.sim.AddECCErrors(1, 5, 0)
	// GPU 2: errors, a reset (volatile counters start again, the pending
	// remap is applied), then more errors.
	r.sim.AddECCErrors(2, 7, 2)
	r.sim.ResetGPU(2)
	r.sim.AddECCErrors(2, 3, 1)
	r.sim.SetRowRemap(3, gpusim.RemapState{Correctable: 4, Pending: true})
	r.sim.SetRowRemap(4, gpusim.RemapState{Correctable: 1, Uncorrectable: 6, Failed: true})
	s := r.sample(t)

	tests := []struct {
		gpu   int
		ecc   snapshot.ECC
		remap snapshot.RemappedRows
	}{
		{0, snapshot.ECC{Aggregate: &snapshot.ECCCounts{}}, snapshot.RemappedRows{}},
		{1, snapshot.ECC{Corrected: 5, Aggregate: &snapshot.ECCCounts{Corrected: 5}}, snapshot.RemappedRows{}},
		{2, snapshot.ECC{Corrected: 3, Uncorrected: 1, Aggregate: &snapshot.ECCCounts{Corrected: 10, Uncorrected: 3}},
			snapshot.RemappedRows{Uncorrectable: 3, Pending: true}},
		{3, snapshot.ECC{Aggregate: &snapshot.ECCCounts{}}, snapshot.RemappedRows{Correctable: 4, Pending: true}},
		{4, snapshot.ECC{Aggregate: &snapshot.ECCCounts{}}, snapshot.RemappedRows{Correctable: 1, Uncorrectable: 6, Failed: true}},
	}
	for _, tc := range tests {
		t.Run(s.GPUs[tc.gpu].UUID, func(t *testing.T) {
			g := s.GPUs[tc.gpu]
			if g.ECC == nil || g.ECC.Aggregate == nil {
				t.Fatalf("GPU %d: ECC %+v, want volatile and aggregate counts", tc.gpu, g.ECC)
			}
			if g.ECC.Corrected != tc.ecc.Corrected || g.ECC.Uncorrected != tc.ecc.Uncorrected || *g.ECC.Aggregate != *tc.ecc.Aggregate {
				t.Errorf("GPU %d ECC = %+v (aggregate %+v), want %+v (aggregate %+v)", tc.gpu, *g.ECC, *g.ECC.Aggregate, tc.ecc, *tc.ecc.Aggregate)
			}
			if g.RemappedRows == nil || *g.RemappedRows != tc.remap {
				t.Errorf("GPU %d remapped rows = %+v, want %+v", tc.gpu, g.RemappedRows, tc.remap)
			}
		})
	}
	golden(t, s, "memory_health", "headroom_gpu_ecc_errors_total", "headroom_gpu_ecc_errors_aggregate_total",
		"headroom_gpu_remapped_rows", "headroom_gpu_row_remap_pending", "headroom_gpu_row_remap_failed")

	// A reset clears GPU 2's volatile counters and its pending remap; the
	// aggregate counts and the remapped rows stay.
	r.sim.ResetGPU(2)
	g := r.sample(t).GPUs[2]
	if g.ECC.Corrected != 0 || g.ECC.Uncorrected != 0 || g.ECC.Aggregate.Uncorrected != 3 || g.RemappedRows.Pending || g.RemappedRows.Uncorrectable != 3 {
		t.Errorf("after reset: ECC %+v aggregate %+v remap %+v", *g.ECC, *g.ECC.Aggregate, *g.RemappedRows)
	}
}

// TestEnergyCounters: the energy counter grows at each GPU's power, which
// the simulator sets from its load (70 W idle to 700 W at full load on
// H100): GPU i at load i/10 for 10 s reads 10·(70 + 630·i/10) J.
func TestEnergyCounters(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxh100")
	loadGPUs(r)
	r.sample(t)
	r.clock.Step(10 * time.Second)
	s := r.sample(t)
	for i, g := range s.GPUs {
		want := 10 * (70 + 630*float64(i)/10)
		if g.EnergyJoules == nil || math.Abs(*g.EnergyJoules-want) > 0.002 {
			t.Errorf("GPU %d energy = %v J, want %.1f J", i, g.EnergyJoules, want)
		}
	}
	golden(t, s, "energy", "headroom_gpu_energy_joules_total")
}
