//go:build cgo

package gonvml_test

import (
	"math"
	"testing"
	"time"

	gonvmlapi "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/headroom-dev/headroom/sim/gpusim"
)

// TestMIGSlicesOnH100: one H100 split 1g/2g/3g (NVIDIA's dgxh100 mock
// profiles), a process per slice, each slice at its own load. Each slice
// reports its own GPM SM activity (0.9 × its load, as the simulator
// models it) and memory, and each process names its slice.
func TestMIGSlicesOnH100(t *testing.T) {
	t.Parallel()
	r := newRig(t, "dgxh100")
	if err := r.sim.EnableMIG(0, gonvmlapi.GPU_INSTANCE_PROFILE_1_SLICE, gonvmlapi.GPU_INSTANCE_PROFILE_2_SLICE, gonvmlapi.GPU_INSTANCE_PROFILE_3_SLICE); err != nil {
		t.Fatal(err)
	}
	first := r.sample(t)
	if len(first.GPUs[0].MIG) != 3 {
		t.Fatalf("got %d MIG devices, want 3: %+v", len(first.GPUs[0].MIG), first.GPUs[0].MIG)
	}
	loads := []float64{0.2, 0.5, 0.8}
	var procs []gpusim.Process
	for i, m := range first.GPUs[0].MIG {
		if !r.sim.SetMIGLoad(0, m.GPUInstanceID, loads[i]) {
			t.Fatalf("no slice with GPU instance %d", m.GPUInstanceID)
		}
		procs = append(procs, gpusim.Process{PID: uint32(700 + i), VRAM: uint64(i+1) << 30, MIGInstance: m.GPUInstanceID})
		if m.SMActive != nil {
			t.Errorf("slice %d has SM activity on its first sample", m.GPUInstanceID)
		}
	}
	r.sim.SetProcesses(0, procs)
	r.sample(t) // primes the slices' GPM
	r.clock.Step(10 * time.Second)
	s := r.sample(t)
	g := s.GPUs[0]
	for i, m := range g.MIG {
		if m.SMActive == nil || math.Abs(*m.SMActive-0.9*loads[i]) > 1e-9 {
			t.Errorf("slice %d (%s) SM active = %v, want %.2f", m.GPUInstanceID, m.Name, m.SMActive, 0.9*loads[i])
		}
		if m.Memory == nil || m.Memory.Used != uint64(i+1)<<30 {
			t.Errorf("slice %d memory = %+v, want its process's %d GiB", m.GPUInstanceID, m.Memory, i+1)
		}
	}
	for i, p := range g.Processes {
		if p.MIGInstance != g.MIG[i].GPUInstanceID {
			t.Errorf("process %d on instance %d, want %d", p.PID, p.MIGInstance, g.MIG[i].GPUInstanceID)
		}
	}
	golden(t, s, "mig_h100", "headroom_gpu_mig_sm_active_ratio", "headroom_gpu_mig_memory_used_bytes",
		"headroom_gpu_mig_memory_total_bytes", "headroom_gpu_process_memory_used_bytes")
}
