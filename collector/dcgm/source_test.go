package dcgm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

const retry = 30 * time.Second

// rig is a source over a fake library with a hand-moved clock.
type rig struct {
	t     *testing.T
	lib   *fakeLibrary
	clock *testutil.Clock
	logs  *logBuffer
	src   *Source
}

// newRig builds the source; setup prepares the fake before New's first
// connection attempt, which the rig waits for.
func newRig(t *testing.T, setup func(*fakeLibrary)) *rig {
	t.Helper()
	r := &rig{t: t, lib: newFake(t), clock: testutil.NewClock(time.Unix(1700000000, 0)), logs: &logBuffer{}}
	if setup != nil {
		setup(r.lib)
	}
	logger := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	o := DefaultOptions()
	o.Retry = retry
	r.src = newSource(t.Context(), r.lib, o, logger, r.clock.Now)
	r.src.attempts.Wait()
	t.Cleanup(func() {
		if err := r.src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// collect runs Collect, applies its part to a snapshot holding nvmlGPUs
// and waits for any connection attempt Collect started.
func (r *rig) collect(nvmlGPUs ...snapshot.GPU) (*snapshot.Snapshot, error) {
	r.t.Helper()
	rd, err := r.src.Collect(r.t.Context())
	r.src.attempts.Wait()
	if err != nil {
		if rd.Own != nil || rd.Enrich != nil {
			r.t.Errorf("Collect returned a reading with error %v", err)
		}
		return nil, err
	}
	if rd.Own != nil {
		r.t.Error("the dcgm source fills no section of its own")
	}
	snap := &snapshot.Snapshot{GPUs: slices.Clone(nvmlGPUs)}
	part, err := rd.Enrich(r.t.Context(), snap)
	if err != nil {
		return nil, err
	}
	part(snap)
	return snap, nil
}

// mustCollect is collect that fails the test on error, and checks up.
func (r *rig) mustCollect(wantUp bool, nvmlGPUs ...snapshot.GPU) *snapshot.Snapshot {
	r.t.Helper()
	snap, err := r.collect(nvmlGPUs...)
	if err != nil {
		r.t.Fatalf("Collect: %v", err)
	}
	if snap.System.DCGM == nil || snap.System.DCGM.Up != wantUp {
		r.t.Fatalf("System.DCGM = %+v, want Up %v", snap.System.DCGM, wantUp)
	}
	return snap
}

func gpu(index int, uuid string) snapshot.GPU { return snapshot.GPU{Index: index, UUID: uuid} }

// profiles renders each GPU's profiling fields, "-" for a GPU without.
func profiles(snap *snapshot.Snapshot) map[string]string {
	out := map[string]string{}
	for _, g := range snap.GPUs {
		p := g.Profiling
		if p == nil {
			out[g.UUID] = "-"
			continue
		}
		var parts []string
		for _, f := range []struct {
			name string
			v    *float64
		}{
			{"sm", p.SMActive}, {"occ", p.SMOccupancy}, {"tensor", p.TensorActive}, {"dram", p.DRAMActive},
			{"pcie_tx", p.PCIeTxBytes}, {"pcie_rx", p.PCIeRxBytes}, {"nvl_tx", p.NVLinkTxBytes}, {"nvl_rx", p.NVLinkRxBytes},
		} {
			if f.v != nil {
				parts = append(parts, fmt.Sprintf("%s=%g", f.name, *f.v))
			}
		}
		out[g.UUID] = strings.Join(parts, " ")
	}
	return out
}

func all(sm float64) []Value {
	vals := make([]Value, 0, 8)
	for i, f := range ProfilingFields() {
		vals = append(vals, Value{Field: f, Value: sm + float64(i)})
	}
	return vals
}

func TestProfilingOnNVMLGPUs(t *testing.T) {
	t.Parallel()
	lost := gpu(1, "GPU-b")
	lost.Lost = true
	for _, tc := range []struct {
		name   string
		dcgm   []GPU
		values map[uint][]Value
		nvml   []snapshot.GPU
		want   map[string]string
	}{
		{
			name:   "matched by UUID, not by ID",
			dcgm:   []GPU{{ID: 0, UUID: "GPU-b"}, {ID: 1, UUID: "GPU-a"}},
			values: map[uint][]Value{0: all(0.5), 1: all(0.25)},
			nvml:   []snapshot.GPU{gpu(0, "GPU-a"), gpu(1, "GPU-b")},
			want: map[string]string{
				"GPU-a": "sm=0.25 occ=1.25 tensor=2.25 dram=3.25 pcie_tx=4.25 pcie_rx=5.25 nvl_tx=6.25 nvl_rx=7.25",
				"GPU-b": "sm=0.5 occ=1.5 tensor=2.5 dram=3.5 pcie_tx=4.5 pcie_rx=5.5 nvl_tx=6.5 nvl_rx=7.5",
			},
		},
		{
			name:   "a GPU DCGM does not know keeps no profile; one NVML lacks is not added",
			dcgm:   []GPU{{ID: 0, UUID: "GPU-a"}, {ID: 1, UUID: "GPU-x"}},
			values: map[uint][]Value{0: {{Field: FieldSMActive, Value: 0.5}}, 1: all(0.9)},
			nvml:   []snapshot.GPU{gpu(0, "GPU-a"), gpu(1, "GPU-c")},
			want:   map[string]string{"GPU-a": "sm=0.5", "GPU-c": "-"},
		},
		{
			name: "blank and unsupported fields stay nil",
			dcgm: []GPU{{ID: 0, UUID: "GPU-a"}},
			values: map[uint][]Value{0: {
				{Field: FieldSMActive, Value: 0.75}, {Field: FieldSMOccupancy, Blank: true},
				{Field: FieldTensorActive, Value: 0}, {Field: FieldPCIeTxBytes, Value: 1e9},
			}},
			nvml: []snapshot.GPU{gpu(0, "GPU-a")},
			want: map[string]string{"GPU-a": "sm=0.75 tensor=0 pcie_tx=1e+09"},
		},
		{
			name:   "a lost GPU keeps no profile",
			dcgm:   []GPU{{ID: 0, UUID: "GPU-a"}, {ID: 1, UUID: "GPU-b"}},
			values: map[uint][]Value{0: {{Field: FieldSMActive, Value: 0.1}}, 1: all(0.2)},
			nvml:   []snapshot.GPU{gpu(0, "GPU-a"), lost},
			want:   map[string]string{"GPU-a": "sm=0.1", "GPU-b": "-"},
		},
		{
			name: "without NVML GPUs nothing is added",
			dcgm: []GPU{{ID: 0, UUID: "GPU-a"}},
			want: map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(f *fakeLibrary) { f.gpus, f.values = tc.dcgm, tc.values })
			snap := r.mustCollect(true, tc.nvml...)
			if got := profiles(snap); !maps.Equal(got, tc.want) {
				t.Errorf("profiles:\n got %v\nwant %v", got, tc.want)
			}
			if n := r.lib.count("connect"); n != 1 {
				t.Errorf("%d connects, want 1", n)
			}
		})
	}
}

func TestUnavailableIsNormalAndRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		setup     func(*fakeLibrary)
		wantCalls []string // of the first attempt
	}{
		{"library missing", func(f *fakeLibrary) { f.libMissing = true }, []string{"connect "}},
		{"host engine unreachable", func(f *fakeLibrary) { f.engineUp = false }, []string{"connect "}},
		{"watch refused", func(f *fakeLibrary) { f.watchErr = errors.New("profiling not supported") }, []string{"connect ", "gpus", "watch", "shutdown"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(f *fakeLibrary) {
				f.gpus, f.values = []GPU{{ID: 0, UUID: "GPU-a"}}, map[uint][]Value{0: all(0.5)}
				tc.setup(f)
			})
			if got := r.lib.callList(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("calls of a failed attempt: %q, want %q", got, tc.wantCalls)
			}
			for range 3 {
				snap := r.mustCollect(false, gpu(0, "GPU-a"))
				if got := profiles(snap)["GPU-a"]; got != "-" {
					t.Errorf("profile while DCGM is down: %q", got)
				}
			}
			r.clock.Add(retry - time.Nanosecond)
			r.mustCollect(false)
			if n := r.lib.count("connect"); n != 1 {
				t.Errorf("%d connects before the retry interval passed, want 1", n)
			}
			r.clock.Add(time.Nanosecond)
			r.mustCollect(false)
			if n := r.lib.count("connect"); n != 2 {
				t.Errorf("%d connects once the retry interval passed, want 2", n)
			}
			if n := r.logs.count("DCGM unavailable"); n != 1 {
				t.Errorf("absence logged %d times, want once:\n%s", n, r.logs.buf.String())
			}

			r.lib.set(func(f *fakeLibrary) { f.libMissing, f.engineUp, f.watchErr = false, true, nil })
			r.clock.Add(retry)
			r.mustCollect(false) // starts the attempt
			snap := r.mustCollect(true, gpu(0, "GPU-a"))
			if got := profiles(snap)["GPU-a"]; !strings.HasPrefix(got, "sm=0.5 ") {
				t.Errorf("profile once DCGM is there: %q", got)
			}
			if n := r.logs.count("DCGM connected"); n != 1 {
				t.Errorf("connection logged %d times, want once", n)
			}
		})
	}
}

func TestReadErrorFailsTheSource(t *testing.T) {
	t.Parallel()
	boom := errors.New("DCGM_ST_GENERIC_ERROR")
	r := newRig(t, func(f *fakeLibrary) { f.gpus = []GPU{{ID: 3, UUID: "GPU-a"}} })
	r.mustCollect(true, gpu(0, "GPU-a"))
	r.lib.set(func(f *fakeLibrary) { f.readErr = boom })
	if _, err := r.collect(gpu(0, "GPU-a")); !errors.Is(err, boom) || !strings.Contains(err.Error(), "gpu 3") {
		t.Fatalf("Collect with a failing read: %v, want %v naming gpu 3", err, boom)
	}
	r.lib.set(func(f *fakeLibrary) { f.readErr = nil })
	r.mustCollect(true, gpu(0, "GPU-a"))
	if n := r.lib.count("connect"); n != 1 {
		t.Errorf("a read error caused a reconnect (%d connects)", n)
	}
}

func TestConnectionLostThenRestored(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(f *fakeLibrary) {
		f.gpus, f.values = []GPU{{ID: 0, UUID: "GPU-a"}}, map[uint][]Value{0: {{Field: FieldSMActive, Value: 0.5}}}
	})
	r.mustCollect(true, gpu(0, "GPU-a"))

	r.lib.set(func(f *fakeLibrary) { f.engineUp = false })
	if _, err := r.collect(gpu(0, "GPU-a")); !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Collect as the host engine goes: %v, want ErrConnectionLost", err)
	}
	if n := r.lib.count("shutdown"); n != 1 {
		t.Errorf("lost connection shut down %d times, want 1", n)
	}
	for range 2 {
		r.clock.Add(retry)
		snap := r.mustCollect(false, gpu(0, "GPU-a"))
		if got := profiles(snap)["GPU-a"]; got != "-" {
			t.Errorf("profile while reconnecting: %q", got)
		}
	}
	if n := r.logs.count("DCGM host engine connection lost"); n != 1 {
		t.Errorf("loss logged %d times, want once", n)
	}
	if n := r.logs.count("DCGM unavailable"); n != 0 {
		t.Errorf("failed reconnects logged %d times, want 0 after the loss line", n)
	}

	r.lib.set(func(f *fakeLibrary) { f.engineUp = true })
	r.clock.Add(retry)
	r.mustCollect(false)
	snap := r.mustCollect(true, gpu(0, "GPU-a"))
	if got := profiles(snap)["GPU-a"]; got != "sm=0.5" {
		t.Errorf("profile after reconnecting: %q", got)
	}
	if n := r.lib.count("connect"); n != 4 {
		t.Errorf("%d connects, want 4 (first, two failed retries, success)", n)
	}
}

func TestCloseShutsDownOnlyAConnection(t *testing.T) {
	t.Parallel()
	for _, up := range []bool{true, false} {
		t.Run(fmt.Sprintf("up=%v", up), func(t *testing.T) {
			t.Parallel()
			lib := newFake(t)
			lib.engineUp = up
			src := newSource(context.Background(), lib, DefaultOptions(), testutil.Logger(), time.Now)
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			want := 0
			if up {
				want = 1
			}
			if n := lib.count("shutdown"); n != want {
				t.Errorf("%d shutdowns, want %d", n, want)
			}
			if _, err := src.Collect(t.Context()); err != nil {
				t.Errorf("Collect after Close: %v", err)
			}
			if n := lib.count("connect"); n != 1 {
				t.Errorf("%d connects, want 1: a closed source must not reconnect", n)
			}
		})
	}
}

func TestNoAttemptAfterContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	lib := newFake(t)
	src := newSource(ctx, lib, DefaultOptions(), testutil.Logger(), time.Now)
	if _, err := src.Collect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if calls := lib.callList(); len(calls) != 0 {
		t.Errorf("calls after the context ended: %q", calls)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		edit    func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"tcp address", func(o *Options) { o.Address = "localhost:5555" }, ""},
		{"socket path", func(o *Options) { o.Address = "/run/dcgm.sock" }, ""},
		{"socket url", func(o *Options) { o.Address = "unix:///run/dcgm.sock" }, ""},
		{"no port", func(o *Options) { o.Address = "localhost" }, "--dcgm.address"},
		{"empty socket url", func(o *Options) { o.Address = "unix://" }, "--dcgm.address"},
		{"retry too short", func(o *Options) { o.Retry = time.Millisecond }, "--dcgm.retry-interval"},
		{"update too short", func(o *Options) { o.Update = time.Millisecond }, "--dcgm.update-interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			tc.edit(&o)
			err := o.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("Validate() = %v, want error containing %q", err, tc.wantErr)
			}
		})
	}
}
