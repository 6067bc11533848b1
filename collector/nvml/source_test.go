package nvml

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

// fakeLib is a Library whose Init fails until told otherwise and whose
// devices answer with fixed values.
type fakeLib struct {
	mu        sync.Mutex
	initErr   error
	initCalls int
	otherCall bool
	devs      []Device
}

func (f *fakeLib) Init() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.initCalls++
	return f.initErr
}
func (f *fakeLib) Shutdown() error { return nil }
func (f *fakeLib) System() (snapshot.System, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.otherCall = true
	return snapshot.System{DriverVersion: "1.0"}, nil
}
func (f *fakeLib) Devices() ([]Device, error) { return f.devs, nil }
func (f *fakeLib) WatchEvents(context.Context, []Device) (<-chan Event, error) {
	return nil, ErrNotSupported
}

// fakeDevice supports everything but power, which it lacks.
type fakeDevice struct{ index int }

func (d fakeDevice) Identity() (Identity, error) {
	return Identity{Index: d.index, UUID: "GPU-x", Name: "Fake"}, nil
}
func (fakeDevice) Memory() (snapshot.Memory, error) {
	return snapshot.Memory{Total: 10, Used: 4, Free: 6}, nil
}
func (fakeDevice) Utilization() (snapshot.Utilization, error) {
	return snapshot.Utilization{GPU: 0.5}, nil
}
func (fakeDevice) TemperatureCelsius() (float64, error) { return 40, nil }
func (fakeDevice) PowerWatts() (float64, error)         { return 0, ErrNotSupported }
func (fakeDevice) EnergyJoules() (float64, error)       { return 0, ErrNotSupported }
func (fakeDevice) Clocks() (float64, float64, error)    { return 1e9, 2e9, nil }
func (fakeDevice) ThrottleReasons() (uint64, error)     { return 0, nil }
func (fakeDevice) ECC() (snapshot.ECC, error)           { return snapshot.ECC{}, nil }
func (fakeDevice) RemappedRows() (snapshot.RemappedRows, error) {
	return snapshot.RemappedRows{}, nil
}
func (fakeDevice) Processes() ([]snapshot.Process, error)     { return nil, nil }
func (fakeDevice) ProcessSMUtil() (map[uint32]float64, error) { return nil, nil }
func (fakeDevice) GPM() (GPM, error)                          { return GPM{}, ErrNoData }
func (fakeDevice) MIGDevices() ([]snapshot.MIGDevice, error)  { return nil, nil }

type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func TestInitRetriesOnItsOwnClockAndLogsOnce(t *testing.T) {
	t.Parallel()
	lib := &fakeLib{initErr: ErrLibraryNotFound, devs: []Device{fakeDevice{0}}}
	logs := &logBuf{}
	s := New(context.Background(), lib, slog.New(slog.NewTextHandler(logs, nil)))
	now := time.Now() // New tried Init with the real clock, just before
	s.now = func() time.Time { return now }

	for range 5 { // within the retry interval: no new Init
		if _, err := s.Collect(context.Background()); !errors.Is(err, ErrNotInitialized) {
			t.Fatalf("err = %v, want ErrNotInitialized", err)
		}
	}
	if lib.initCalls != 1 || lib.otherCall {
		t.Fatalf("init calls = %d, other calls = %v; want 1 and none", lib.initCalls, lib.otherCall)
	}
	now = now.Add(DefaultInitRetry)
	if _, err := s.Collect(context.Background()); !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("retry err = %v", err)
	}
	if n := strings.Count(logs.String(), "NVML unavailable"); n != 1 {
		t.Errorf("failure logged %d times, want 1", n)
	}

	lib.initErr = nil // the driver container finished installing
	now = now.Add(DefaultInitRetry)
	r, err := s.Collect(context.Background())
	if err != nil {
		t.Fatalf("collect after the library appeared: %v", err)
	}
	var snap snapshot.Snapshot
	r.Own(&snap)
	if len(snap.GPUs) != 1 || snap.GPUs[0].Memory.Used != 4 || snap.System.DriverVersion != "1.0" {
		t.Errorf("snapshot = %+v", snap)
	}
	if snap.GPUs[0].PowerWatts != nil {
		t.Errorf("unsupported power reported as %v", *snap.GPUs[0].PowerWatts)
	}
	if !strings.Contains(logs.String(), "NVML loaded after earlier failure") {
		t.Errorf("recovery not logged")
	}
}

func TestCollectHonoursContext(t *testing.T) {
	t.Parallel()
	lib := &fakeLib{devs: []Device{fakeDevice{0}, fakeDevice{1}}}
	s := New(context.Background(), lib, testutil.Logger())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Collect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
