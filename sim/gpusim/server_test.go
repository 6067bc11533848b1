//go:build cgo

package gpusim

import (
	"strings"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

func TestUUIDsStableForSeed(t *testing.T) {
	t.Parallel()
	a, _ := New(Options{Profile: "dgxa100", Seed: 42})
	b, _ := New(Options{Profile: "dgxa100", Seed: 42})
	c, _ := New(Options{Profile: "dgxa100", Seed: 43})
	seen := map[string]bool{}
	for i := range a.NumGPUs() {
		if a.UUID(i) != b.UUID(i) {
			t.Errorf("GPU %d: same seed gave %s and %s", i, a.UUID(i), b.UUID(i))
		}
		if a.UUID(i) == c.UUID(i) {
			t.Errorf("GPU %d: different seeds gave the same UUID", i)
		}
		if !strings.HasPrefix(a.UUID(i), "GPU-") || len(a.UUID(i)) != len("GPU-")+36 || seen[a.UUID(i)] {
			t.Errorf("GPU %d: bad or repeated UUID %q", i, a.UUID(i))
		}
		seen[a.UUID(i)] = true
		// Lookups by UUID and by index give the same handle.
		byIndex, _ := a.DeviceGetHandleByIndex(i)
		if d, ret := a.DeviceGetHandleByUUID(a.UUID(i)); ret != nvml.SUCCESS || d != byIndex {
			t.Errorf("GPU %d not found by its UUID: %v", i, ret)
		}
	}
}

func TestUnknownProfile(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Profile: "dgx1"}); err == nil || !strings.Contains(err.Error(), "dgxh100") {
		t.Fatalf("err = %v, want the list of profiles", err)
	}
}

func TestLoadModel(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, _ := New(Options{Profile: "dgxh100", Clock: func() time.Time { return now }})
	s.SetLoad(0, 1)
	s.SetLoad(1, 7) // clamped
	if got := s.Load(1); got != 1 {
		t.Errorf("load clamped to %v, want 1", got)
	}
	idle, _ := s.Devices[2].GetPowerUsage()
	busy, _ := s.Devices[0].GetPowerUsage()
	if idle != 70000 || busy != 700000 {
		t.Errorf("power idle/busy = %d/%d mW, want 70000/700000 (H100 idle and TDP)", idle, busy)
	}
	t0, _ := s.Devices[0].GetTemperature(nvml.TEMPERATURE_GPU)
	now = now.Add(time.Minute)
	t1, _ := s.Devices[0].GetTemperature(nvml.TEMPERATURE_GPU)
	if t0 != 30 || t1 <= 70 || t1 > 82 {
		t.Errorf("temperature %d -> %d °C after a minute at full load, want 30 -> (70, 82]", t0, t1)
	}
	s.Populate(4, 1)
	m, _ := s.Devices[0].GetMemoryInfo_v2()
	if m.Used+m.Free+m.Reserved != m.Total || m.Used < m.Total*8/10 {
		t.Errorf("memory %+v: want used+free+reserved = total and the model server holding most", m)
	}
}

func TestForceThrottle(t *testing.T) {
	t.Parallel()
	s, _ := New(Options{Profile: "dgxh100"})
	s.SetLoad(0, 0.5)
	s.SetLoad(1, 0.5)
	s.ForceThrottle(0, ThrottleHWSlowdown)
	forced, _ := s.Devices[0].GetCurrentClocksEventReasons()
	plain, _ := s.Devices[1].GetCurrentClocksEventReasons()
	fclk, _ := s.Devices[0].GetClockInfo(nvml.CLOCK_SM)
	pclk, _ := s.Devices[1].GetClockInfo(nvml.CLOCK_SM)
	if forced&ThrottleHWSlowdown == 0 || plain&ThrottleHWSlowdown != 0 || fclk >= pclk {
		t.Errorf("forced GPU: reasons %#x clock %d; plain GPU: reasons %#x clock %d", forced, fclk, plain, pclk)
	}
	s.ForceThrottle(0, 0)
	if r, _ := s.Devices[0].GetCurrentClocksEventReasons(); r&ThrottleHWSlowdown != 0 {
		t.Errorf("cleared GPU still reports %#x", r)
	}
}
