package scoring

import (
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func TestMemoryHold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    *telemetryv1.GPUHealth
		want string
	}{
		{"no health", nil, ""},
		{"clean", &telemetryv1.GPUHealth{}, ""},
		{"uncorrectable ECC", &telemetryv1.GPUHealth{EccUncorrected: 1}, HoldECCUncorrected},
		{"remap pending", &telemetryv1.GPUHealth{RowRemapPending: true}, HoldRowRemapPending},
		{"remap failed", &telemetryv1.GPUHealth{RowRemapFailed: true}, HoldRowRemapFailed},
		{"failed outranks pending and ECC", &telemetryv1.GPUHealth{EccUncorrected: 2, RowRemapPending: true, RowRemapFailed: true}, HoldRowRemapFailed},
		{"pending outranks ECC", &telemetryv1.GPUHealth{EccUncorrected: 2, RowRemapPending: true}, HoldRowRemapPending},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MemoryHold(tc.h); got != tc.want {
				t.Errorf("MemoryHold = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPickerHoldsPendingRemapUntilReset: the endpoint that would win every
// pick (its GPU the emptiest) reports a pending row remap; the picker
// sends it nothing for as long as the reports show the remap pending,
// however long that is (no timer ends it), says why in HeldOut, and takes
// it back with the first report after the GPU's reset.
func TestPickerHoldsPendingRemapUntilReset(t *testing.T) {
	t.Parallel()
	p := newDefault(t, 1, func() time.Time { return t0 })
	report := func(at time.Duration, health *telemetryv1.GPUHealth) *store.View {
		e := eps(3, func(i int, e *store.Endpoint) {
			e.ReportSample = t0.Add(at)
			e.Pod.ModelServer.SampleTimeUnixNano = uint64(t0.Add(at).UnixNano())
			if i == 0 {
				e.GPUs[0].MemoryUsedBytes, e.GPUs[0].MemoryFreeBytes = 8<<30, 72<<30
				e.GPUs[0].SmActive = ptr(0.05)
				e.Pod.ModelServer.KvCacheUsage = ptr(0.0)
				e.GPUs[0].Health = health
			}
		})
		return &store.View{Endpoints: e, Built: t0.Add(at)}
	}
	steps := []struct {
		name   string
		at     time.Duration
		health *telemetryv1.GPUHealth
		picked bool
		reason string
	}{
		{"clean", 0, &telemetryv1.GPUHealth{}, true, ""},
		{"uncorrectable error, remap pending", time.Second, &telemetryv1.GPUHealth{EccUncorrected: 1, RowRemapPending: true}, false, HoldRowRemapPending},
		{"still pending an hour on", time.Hour, &telemetryv1.GPUHealth{EccUncorrected: 1, RowRemapPending: true}, false, HoldRowRemapPending},
		{"after the reset", time.Hour + time.Second, &telemetryv1.GPUHealth{}, true, ""},
	}
	for _, st := range steps {
		v := report(st.at, st.health)
		got := 0
		for range 20 {
			e, err := p.Pick(&Request{Model: "m"}, v, 1)
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			if e[0] == v.Endpoints[0] {
				got++
			}
		}
		if st.picked && got == 0 {
			t.Errorf("%s: the emptiest endpoint got no pick of 20", st.name)
		}
		if !st.picked && got != 0 {
			t.Errorf("%s: the held-out endpoint got %d picks of 20", st.name, got)
		}
		held := p.HeldOut(v)
		for _, r := range HoldReasons() {
			want := 0
			if r == st.reason {
				want = 1
			}
			if held[r] != want {
				t.Errorf("%s: HeldOut[%s] = %d, want %d (all: %v)", st.name, r, held[r], want, held)
			}
		}
	}
}
