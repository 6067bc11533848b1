//go:build cgo

package gpusim

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// fillDevice sets the telemetry functions the mock device leaves nil (and
// wraps its identity functions so a lost GPU answers ERROR_GPU_IS_LOST).
func (s *Server) fillDevice(g *gpu) {
	d := g.dev
	uuid, name := d.GetUUIDFunc, d.GetNameFunc
	d.GetUUIDFunc = func() (v string, r nvml.Return) {
		r = s.withGPU(g, func(*gpu) nvml.Return { v, r = uuid(); return r })
		return v, r
	}
	d.GetNameFunc = func() (v string, r nvml.Return) {
		r = s.withGPU(g, func(*gpu) nvml.Return { v, r = name(); return r })
		return v, r
	}
	d.GetPciInfoFunc = func() (p nvml.PciInfo, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			p.PciDeviceId = g.dev.Config.PciDeviceId
			for i, c := range []byte(g.dev.PciBusID) {
				p.BusId[i] = int8(c)
			}
			return nvml.SUCCESS
		})
		return p, r
	}
	d.GetMemoryInfo_v2Func = func() (m nvml.Memory_v2, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return { m = g.memory(); return nvml.SUCCESS })
		return m, r
	}
	d.GetMemoryInfoFunc = func() (m nvml.Memory, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			v2 := g.memory()
			m = nvml.Memory{Total: v2.Total, Used: v2.Used + v2.Reserved, Free: v2.Free}
			return nvml.SUCCESS
		})
		return m, r
	}
	d.GetUtilizationRatesFunc = func() (u nvml.Utilization, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			u = nvml.Utilization{Gpu: uint32(100 * g.load), Memory: uint32(60 * g.load)}
			return nvml.SUCCESS
		})
		return u, r
	}
	s.fillThermals(g)
	s.fillHealth(g)
	s.fillProcesses(g)
	s.fillGPM(g)
	s.fillMIGGPM(g)
	s.fillMIG(g)
	s.fillEvents(g)
}

// fillThermals sets temperature, power, clocks and throttle reasons.
func (s *Server) fillThermals(g *gpu) {
	d := g.dev
	d.GetTemperatureFunc = func(nvml.TemperatureSensors) (t uint32, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return { t = uint32(g.temp + 0.5); return nvml.SUCCESS })
		return t, r
	}
	d.GetPowerUsageFunc = func() (mw uint32, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return { mw = g.powerMilliwatts(s.prof); return nvml.SUCCESS })
		return mw, r
	}
	d.GetClockInfoFunc = func(ct nvml.ClockType) (mhz uint32, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			switch ct {
			case nvml.CLOCK_SM, nvml.CLOCK_GRAPHICS:
				mhz = g.smClock(s.prof)
			case nvml.CLOCK_MEM:
				mhz = s.prof.memClockMHz
			default:
				return nvml.ERROR_INVALID_ARGUMENT
			}
			return nvml.SUCCESS
		})
		return mhz, r
	}
	d.GetCurrentClocksEventReasonsFunc = func() (v uint64, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return { v = g.throttleReasons(); return nvml.SUCCESS })
		return v, r
	}
}

// fillProcesses sets the compute-process list and per-process utilisation.
func (s *Server) fillProcesses(g *gpu) {
	d := g.dev
	d.GetComputeRunningProcessesFunc = func() (out []nvml.ProcessInfo, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			out = make([]nvml.ProcessInfo, 0, len(g.procs))
			for _, p := range g.procs {
				gi, ci := uint32(0xFFFFFFFF), uint32(0xFFFFFFFF)
				if p.MIGInstance >= 0 {
					gi, ci = uint32(p.MIGInstance), 0
				}
				out = append(out, nvml.ProcessInfo{Pid: p.PID, UsedGpuMemory: p.VRAM, GpuInstanceId: gi, ComputeInstanceId: ci})
			}
			return nvml.SUCCESS
		})
		return out, r
	}
	d.GetProcessUtilizationFunc = func(since uint64) (out []nvml.ProcessUtilizationSample, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			// One sample per process per call, stamped with the model clock
			// in microseconds and strictly increasing.
			ts := max(uint64(g.last.UnixMicro()), g.procUtilTS+1)
			if ts <= since || len(g.procs) == 0 {
				return nvml.ERROR_NOT_FOUND
			}
			g.procUtilTS = ts
			for pid, u := range g.processSMUtil() {
				out = append(out, nvml.ProcessUtilizationSample{Pid: pid, TimeStamp: ts, SmUtil: u})
			}
			return nvml.SUCCESS
		})
		return out, r
	}
}
