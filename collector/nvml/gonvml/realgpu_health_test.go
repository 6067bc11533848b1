//go:build cgo

package gonvml_test

import (
	"testing"
	"time"
)

// TestRealEnergyAndMemoryHealth checks the readings issue 17 added on a
// real GPU: the energy counter is there (Volta and later) and does not go
// back, and grows by no more than the board could draw between two
// samples; the minor number is read; ECC and row-remap readings are
// consistent (aggregate counts at least the volatile ones, no remap
// pending without an uncorrectable row or a failed one). The values are
// logged for the closing note.
func TestRealEnergyAndMemoryHealth(t *testing.T) {
	s := realSource(t)
	first := collectReal(t, s)
	start := time.Now()
	time.Sleep(2 * time.Second)
	second := collectReal(t, s)
	elapsed := time.Since(start).Seconds()
	for i, g := range second.GPUs {
		g0 := first.GPUs[i]
		if g.Minor == nil {
			t.Errorf("GPU %d: no minor number", g.Index)
		}
		if g.EnergyJoules == nil || g0.EnergyJoules == nil {
			t.Errorf("GPU %d %s: no energy counter", g.Index, g.Name)
		} else {
			dE := *g.EnergyJoules - *g0.EnergyJoules
			// 2 kW is above every board's limit today.
			if dE < 0 || dE > 2000*elapsed {
				t.Errorf("GPU %d energy moved %.1f J in %.1f s", g.Index, dE, elapsed)
			}
			t.Logf("GPU %d: minor %v, energy %.1f J since driver load, %.1f W over the last %.1f s (power reading %v W)",
				g.Index, deref(g.Minor), *g.EnergyJoules, dE/elapsed, elapsed, deref(g.PowerWatts))
		}
		if e := g.ECC; e != nil {
			if a := e.Aggregate; a != nil && (a.Corrected < e.Corrected || a.Uncorrected < e.Uncorrected) {
				t.Errorf("GPU %d: aggregate ECC %+v below volatile %+v", g.Index, *a, *e)
			}
			t.Logf("GPU %d: ECC volatile %d/%d, aggregate %v", g.Index, e.Corrected, e.Uncorrected, deref(e.Aggregate))
		} else {
			t.Logf("GPU %d: ECC off or unsupported", g.Index)
		}
		if r := g.RemappedRows; r != nil {
			if r.Correctable < 0 || r.Uncorrectable < 0 {
				t.Errorf("GPU %d: negative remapped rows %+v", g.Index, *r)
			}
			t.Logf("GPU %d: remapped rows %+v", g.Index, *r)
		}
		for _, m := range g.MIG {
			t.Logf("GPU %d MIG %s (GI %d): memory %v", g.Index, m.Name, m.GPUInstanceID, deref(m.Memory))
		}
	}
}
