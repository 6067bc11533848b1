package snapshot

import (
	"strconv"
	"testing"
)

func TestSMActivityPrefersDCGM(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	str := func(p *float64) string {
		if p == nil {
			return "nil"
		}
		return strconv.FormatFloat(*p, 'g', -1, 64)
	}
	for _, tc := range []struct {
		name         string
		gpu          GPU
		wantA, wantO string
	}{
		{"GPM only", GPU{SMActive: f(0.4), SMOccupancy: f(0.2)}, "0.4", "0.2"},
		{"DCGM over GPM", GPU{SMActive: f(0.4), SMOccupancy: f(0.2), Profiling: &Profiling{SMActive: f(0.5), SMOccupancy: f(0.3)}}, "0.5", "0.3"},
		{"a blank DCGM field leaves GPM's", GPU{SMActive: f(0.4), Profiling: &Profiling{SMOccupancy: f(0.3)}}, "0.4", "0.3"},
		{"neither", GPU{}, "nil", "nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, o := tc.gpu.SMActivity()
			if str(a) != tc.wantA || str(o) != tc.wantO {
				t.Errorf("SMActivity() = %s, %s; want %s, %s", str(a), str(o), tc.wantA, tc.wantO)
			}
		})
	}
}
