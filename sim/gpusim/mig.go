//go:build cgo

package gpusim

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// maxMIGDevices is the number of MIG device slots NVML reports.
const maxMIGDevices = 7

// migSlice is one MIG device: a GPU instance created through the mock
// server's own MIG functions, with a compute instance spanning it.
type migSlice struct {
	handle migHandle
	gi     int
	info   nvml.GpuInstanceProfileInfo
	// load is the slice's own load (0–1), set by SetMIGLoad; smActiveSec
	// integrates its GPM SM activity as the GPU's does.
	load        float64
	smActiveSec float64
}

// SetMIGLoad sets the load of the MIG slice with GPU-instance ID gi on GPU
// i (clamped to 0–1) from now on: its GPM SM activity follows it, as the
// whole GPU's follows SetLoad. It reports whether the slice exists.
func (s *Server) SetMIGLoad(i, gi int, load float64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.gpus[i]
	g.advance(s.now(), s.prof)
	for _, m := range g.mig {
		if m.gi == gi {
			m.load = min(max(load, 0), 1)
			return true
		}
	}
	return false
}

// EnableMIG turns MIG on for GPU i and creates one GPU instance per profile
// ID (nvml.GPU_INSTANCE_PROFILE_*), using the profiles of NVIDIA's mock.
func (s *Server) EnableMIG(i int, profileIDs ...int) error {
	g := s.gpus[i]
	d := g.dev
	if ret, _ := d.SetMigMode(nvml.DEVICE_MIG_ENABLE); ret != nvml.SUCCESS {
		return fmt.Errorf("set MIG mode: %v", ret)
	}
	for _, id := range profileIDs {
		info, ret := d.GetGpuInstanceProfileInfo(id)
		if ret != nvml.SUCCESS {
			return fmt.Errorf("MIG profile %d: %v", id, ret)
		}
		gi, ret := d.CreateGpuInstance(&info)
		if ret != nvml.SUCCESS {
			return fmt.Errorf("create GPU instance %d: %v", id, ret)
		}
		giInfo, _ := gi.GetInfo()
		s.mu.Lock()
		if len(g.mig) == maxMIGDevices {
			s.mu.Unlock()
			return fmt.Errorf("GPU %d already has %d MIG devices", i, maxMIGDevices)
		}
		g.mig = append(g.mig, s.newMIGSlice(g, int(giInfo.Id), info))
		s.mu.Unlock()
	}
	return nil
}

func (s *Server) newMIGSlice(g *gpu, gi int, info nvml.GpuInstanceProfileInfo) *migSlice {
	h := &mock.Device{}
	m := &migSlice{handle: migHandle{h}, gi: gi, info: info}
	uuid := fmt.Sprintf("MIG-%s-%d", g.dev.UUID[len("GPU-"):], gi)
	name := fmt.Sprintf("%s MIG %dg.%dgb", g.dev.Config.Name, info.SliceCount, (info.MemorySizeMB+512)/1024)
	h.GetUUIDFunc = func() (string, nvml.Return) { return uuid, nvml.SUCCESS }
	h.GetNameFunc = func() (string, nvml.Return) { return name, nvml.SUCCESS }
	h.IsMigDeviceHandleFunc = func() (bool, nvml.Return) { return true, nvml.SUCCESS }
	h.GetGpuInstanceIdFunc = func() (int, nvml.Return) { return gi, nvml.SUCCESS }
	h.GetComputeInstanceIdFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
	h.GetDeviceHandleFromMigDeviceHandleFunc = func() (nvml.Device, nvml.Return) { return g.dev, nvml.SUCCESS }
	h.GetMemoryInfoFunc = func() (mem nvml.Memory, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			mem.Total = info.MemorySizeMB << 20
			for _, p := range g.procs {
				if p.MIGInstance == gi {
					mem.Used += p.VRAM
				}
			}
			mem.Used = min(mem.Used, mem.Total)
			mem.Free = mem.Total - mem.Used
			return nvml.SUCCESS
		})
		return mem, r
	}
	return m
}

// fillMIG wraps the mock's MIG mode for lost GPUs and lists MIG devices.
func (s *Server) fillMIG(g *gpu) {
	d := g.dev
	mode := d.GetMigModeFunc
	d.GetMigModeFunc = func() (cur, pending int, r nvml.Return) {
		r = s.withGPU(g, func(*gpu) nvml.Return { cur, pending, r = mode(); return r })
		return cur, pending, r
	}
	d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) {
		return maxMIGDevices, s.withGPU(g, func(*gpu) nvml.Return { return nvml.SUCCESS })
	}
	d.GetMigDeviceHandleByIndexFunc = func(i int) (h nvml.Device, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			if i < 0 || i >= len(g.mig) {
				return nvml.ERROR_NOT_FOUND
			}
			h = g.mig[i].handle
			return nvml.SUCCESS
		})
		return h, r
	}
}
