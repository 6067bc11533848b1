//go:build cgo

package gonvml_test

import (
	"context"
	"log/slog"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/snapshot"
)

// realGPU is set on a machine with an NVIDIA driver to run the source
// against the real libnvidia-ml. Unset, the tests below skip: no machine
// without a GPU can run them, CI included.
const realGPU = "HEADROOM_REAL_GPU"

var uuidPattern = regexp.MustCompile(`^(GPU|MIG)-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func realSource(t testing.TB) *nvml.Source {
	t.Helper()
	if os.Getenv(realGPU) == "" {
		t.Skip(realGPU + " is unset: needs an NVIDIA driver (run by hack/realgpu.sh on a GPU machine)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s := nvml.New(ctx, gonvml.New(), logger)
	t.Cleanup(func() { cancel(); _ = s.Close() })
	return s
}

func collectReal(t testing.TB, s *nvml.Source) snapshot.Snapshot {
	t.Helper()
	r, err := s.Collect(context.Background())
	if err != nil {
		t.Fatalf("Collect on the real driver: %v", err)
	}
	var snap snapshot.Snapshot
	r.Own(&snap)
	return snap
}

// TestRealDriver checks the readings of every GPU for the invariants the
// driver guarantees; the values are logged for the closing note.
func TestRealDriver(t *testing.T) {
	s := realSource(t)
	snap := collectReal(t, s)
	if snap.System.DriverVersion == "" || len(snap.GPUs) == 0 {
		t.Fatalf("driver %q with %d GPUs", snap.System.DriverVersion, len(snap.GPUs))
	}
	t.Logf("driver %s, NVML %s, CUDA %d", snap.System.DriverVersion, snap.System.NVMLVersion, snap.System.CUDADriverVersion)
	for _, g := range snap.GPUs {
		checkRealGPU(t, g)
	}
}

func checkRealGPU(t *testing.T, g snapshot.GPU) {
	t.Helper()
	if !uuidPattern.MatchString(g.UUID) || g.Name == "" || g.PCIBusID == "" || g.Lost {
		t.Errorf("GPU %d identity: uuid %q name %q bus %q lost %v", g.Index, g.UUID, g.Name, g.PCIBusID, g.Lost)
	}
	if g.Memory == nil {
		t.Fatalf("GPU %d: no memory reading", g.Index)
	}
	m := g.Memory
	if m.Total == 0 || m.Used+m.Free+m.Reserved != m.Total {
		t.Errorf("GPU %d memory: used %d + free %d + reserved %d != total %d", g.Index, m.Used, m.Free, m.Reserved, m.Total)
	}
	var procMem uint64
	for _, p := range g.Processes {
		procMem += p.UsedMemory
	}
	if procMem > m.Used {
		t.Errorf("GPU %d: processes hold %d bytes, more than the %d used", g.Index, procMem, m.Used)
	}
	t.Logf("GPU %d %s %s: memory total %d used %d free %d reserved %d; util %+v; SM active %v; temp %v; power %v; SM clock %v; throttle %v; ECC %+v; remap %+v; %d processes (%d bytes); %d MIG",
		g.Index, g.Name, g.UUID, m.Total, m.Used, m.Free, m.Reserved, deref(g.Utilization), deref(g.SMActive),
		deref(g.TemperatureCelsius), deref(g.PowerWatts), deref(g.SMClockHz), deref(g.ThrottleReasons),
		deref(g.ECC), deref(g.RemappedRows), len(g.Processes), procMem, len(g.MIG))
	for _, p := range g.Processes {
		t.Logf("  process %d: %d bytes, SM %v", p.PID, p.UsedMemory, deref(p.SMUtil))
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return "absent"
	}
	return *p
}

// BenchmarkRealCollect is the cost of one sample of every GPU through the
// real driver: the floor under the agent's --sample-interval.
func BenchmarkRealCollect(b *testing.B) {
	s := realSource(b)
	collectReal(b, s)
	time.Sleep(100 * time.Millisecond)
	b.ResetTimer()
	for b.Loop() {
		collectReal(b, s)
	}
}
