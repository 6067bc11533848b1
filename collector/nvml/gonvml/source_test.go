//go:build cgo

package gonvml_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	gonvmlapi "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/snapshot"
)

// loadGPUs gives GPU i load i/10 and three processes each.
func loadGPUs(r *rig) {
	r.sim.Populate(3, 1)
	for i := range r.sim.NumGPUs() {
		r.sim.SetLoad(i, float64(i)/10)
	}
}

func TestH100Sample(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxh100")
	loadGPUs(r)
	r.sample(t) // first GPM sample
	r.clock.Step(10 * time.Second)
	s := r.sample(t)

	if len(s.GPUs) != 8 {
		t.Fatalf("got %d GPUs, want 8", len(s.GPUs))
	}
	for i, g := range s.GPUs {
		load := float64(i) / 10
		if g.SMActive == nil || math.Abs(*g.SMActive-0.9*load) > 1e-9 {
			t.Errorf("GPU %d SM active = %v, want %.2f (GPM over 10s at load %.1f)", i, g.SMActive, 0.9*load, load)
		}
		if g.Memory == nil || g.Memory.Used+g.Memory.Free+g.Memory.Reserved != g.Memory.Total {
			t.Errorf("GPU %d memory does not add up: %+v", i, g.Memory)
		}
		var procVRAM uint64
		for _, p := range g.Processes {
			procVRAM += p.UsedMemory
		}
		if procVRAM != g.Memory.Used {
			t.Errorf("GPU %d: processes hold %d bytes, memory used %d", i, procVRAM, g.Memory.Used)
		}
	}
	golden(t, s, "h100",
		"headroom_gpu_info", "headroom_gpu_memory_total_bytes", "headroom_gpu_memory_used_bytes",
		"headroom_gpu_memory_free_bytes", "headroom_gpu_memory_reserved_bytes",
		"headroom_gpu_utilization_ratio", "headroom_gpu_sm_active_ratio", "headroom_gpu_sm_occupancy_ratio",
		"headroom_gpu_temperature_celsius", "headroom_gpu_power_watts", "headroom_gpu_sm_clock_hertz",
		"headroom_gpu_processes", "headroom_gpu_process_memory_used_bytes", "headroom_gpu_process_sm_utilization_ratio",
		"headroom_gpu_ecc_errors_total", "headroom_gpu_remapped_rows", "headroom_gpu_lost")
}

func TestA100WithoutGPM(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxa100")
	loadGPUs(r)
	var s *snapshot.Snapshot
	for range 3 {
		s = r.sample(t)
		r.clock.Step(time.Second)
	}
	for i, g := range s.GPUs {
		if g.SMActive != nil || g.SMOccupancy != nil {
			t.Errorf("GPU %d has GPM readings on Ampere", i)
		}
		if g.Utilization == nil {
			t.Errorf("GPU %d lost its utilisation", i)
		}
	}
	if n := strings.Count(r.logs.String(), "reading=gpm"); n != 8 {
		t.Errorf("GPM 'not supported' logged %d times over 3 samples of 8 GPUs, want once per GPU (8)", n)
	}
	golden(t, s, "a100", "headroom_gpu_info", "headroom_gpu_memory_total_bytes", "headroom_gpu_utilization_ratio",
		"headroom_gpu_sm_active_ratio", "headroom_gpu_power_watts")
}

func TestMIGDevicesAndProcesses(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxa100")
	if err := r.sim.EnableMIG(0, gonvmlapi.GPU_INSTANCE_PROFILE_1_SLICE, gonvmlapi.GPU_INSTANCE_PROFILE_3_SLICE); err != nil {
		t.Fatal(err)
	}
	r.sim.SetProcesses(0, []gpusim.Process{
		{PID: 500, VRAM: 3 << 30, MIGInstance: 0},
		{PID: 501, VRAM: 8 << 30, MIGInstance: 1},
	})
	r.sim.SetLoad(0, 0.5)
	s := r.sample(t)
	g := s.GPUs[0]
	if len(g.MIG) != 2 {
		t.Fatalf("got %d MIG devices, want 2: %+v", len(g.MIG), g.MIG)
	}
	if got := g.MIG[1].Memory.Used; got != 8<<30 {
		t.Errorf("MIG 1 used = %d, want the 8 GiB of its process", got)
	}
	if len(s.GPUs[1].MIG) != 0 {
		t.Errorf("GPU 1 has MIG devices with MIG off")
	}
	golden(t, s, "mig", "headroom_gpu_mig_memory_total_bytes", "headroom_gpu_mig_memory_used_bytes",
		"headroom_gpu_process_memory_used_bytes")
}

func TestXidEventsAreCounted(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxh100")
	r.sim.InjectXid(2, 48)
	r.sim.InjectXid(2, 48)
	r.sim.InjectXid(5, 13)
	s := waitFor(t, r, func(s *snapshot.Snapshot) bool {
		return s.GPUs[2].XidErrors[48] == 2 && s.GPUs[5].XidErrors[13] == 1
	})
	if len(s.GPUs[0].XidErrors) != 0 {
		t.Errorf("GPU 0 has Xids it never had: %v", s.GPUs[0].XidErrors)
	}
	if n := strings.Count(r.logs.String(), "xid=48"); n != 1 {
		t.Errorf("Xid 48 logged %d times, want once (repeats only count)", n)
	}
	golden(t, s, "xid", "headroom_gpu_xid_errors_total")
}

func TestGPULostMidRun(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxh100")
	loadGPUs(r)
	before := r.sample(t)
	if before.GPUs[3].Lost {
		t.Fatal("GPU 3 lost before the test lost it")
	}
	r.sim.LoseGPU(3)
	r.clock.Step(time.Second)
	s := waitFor(t, r, func(s *snapshot.Snapshot) bool { return s.GPUs[3].XidErrors[79] == 1 })
	for i, g := range s.GPUs {
		if want := i == 3; g.Lost != want {
			t.Errorf("GPU %d lost = %v, want %v", i, g.Lost, want)
		}
		if i != 3 && g.Memory == nil {
			t.Errorf("GPU %d stopped reporting memory when GPU 3 was lost", i)
		}
	}
	if g := s.GPUs[3]; g.UUID != before.GPUs[3].UUID || g.Memory != nil || g.Processes != nil {
		t.Errorf("lost GPU should keep its identity and drop readings: %+v", g)
	}
	golden(t, s, "lost", "headroom_gpu_lost", "headroom_gpu_xid_errors_total", "headroom_gpu_memory_used_bytes")

	r.sim.RecoverGPU(3)
	if s := r.sample(t); s.GPUs[3].Lost || s.GPUs[3].Memory == nil {
		t.Errorf("GPU 3 still lost after recovery")
	}
}

func TestThermalThrottling(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxh100")
	r.sim.SetAmbient(1, 40)
	r.sim.SetLoad(0, 1)
	r.sim.SetLoad(1, 1)
	cool := r.sample(t)
	r.clock.Step(5 * time.Minute)
	hot := r.sample(t)
	if *hot.GPUs[0].TemperatureCelsius <= *cool.GPUs[0].TemperatureCelsius {
		t.Errorf("temperature did not rise with load: %v -> %v", *cool.GPUs[0].TemperatureCelsius, *hot.GPUs[0].TemperatureCelsius)
	}
	const hwThermal = 0x40
	if *hot.GPUs[0].ThrottleReasons&hwThermal != 0 {
		t.Errorf("GPU 0 throttles at normal ambient")
	}
	if *hot.GPUs[1].ThrottleReasons&hwThermal == 0 || *hot.GPUs[1].SMClockHz >= *hot.GPUs[0].SMClockHz {
		t.Errorf("hot GPU 1 does not throttle: reasons %#x, clock %v", *hot.GPUs[1].ThrottleReasons, *hot.GPUs[1].SMClockHz)
	}
}

func TestNoCallAfterFailedInit(t *testing.T) {
	t.Parallel()
	// A bare go-nvml mock panics on any function not set: only Init is.
	bare := &mock.Interface{InitFunc: func() gonvmlapi.Return { return gonvmlapi.ERROR_LIBRARY_NOT_FOUND }}
	src := nvml.New(context.Background(), gonvml.FromInterface(bare), testutil.Logger())
	for range 3 {
		_, err := src.Collect(context.Background())
		if !errors.Is(err, nvml.ErrLibraryNotFound) && !errors.Is(err, nvml.ErrNotInitialized) {
			t.Fatalf("err = %v, want library not found / not initialised", err)
		}
	}
	if err := src.Close(); err != nil {
		t.Errorf("close after failed init: %v", err)
	}
	if n := len(bare.InitCalls()); n != 1 {
		t.Errorf("Init called %d times within the retry interval, want 1", n)
	}
}

// waitFor samples until cond holds (events arrive asynchronously).
func waitFor(t *testing.T, r *rig, cond func(*snapshot.Snapshot) bool) *snapshot.Snapshot {
	t.Helper()
	var s *snapshot.Snapshot
	testutil.Until(t, 10*time.Second, 10*time.Millisecond, func() error {
		if s = r.sample(t); !cond(s) {
			return fmt.Errorf("condition not met; last snapshot GPUs: %+v", s.GPUs)
		}
		return nil
	})
	return s
}
