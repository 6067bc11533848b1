//go:build cgo

package gonvml

import (
	"fmt"
	"strings"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/snapshot"
)

// Device adapts one go-nvml device handle. It is used by one goroutine at a
// time (the sampler).
type Device struct {
	l     *Library
	h     gonvml.Device
	index int

	lastProcTS uint64
	gpm        gpmState
	// migGPM holds each MIG slice's GPM sample pair, by GPU-instance ID.
	migGPM map[int]*gpmPair
}

var _ nvml.Device = (*Device)(nil)

// mhz is one megahertz in hertz.
const mhz = 1e6

// notAvailable is NVML_VALUE_NOT_AVAILABLE for 64-bit values.
const notAvailable = ^uint64(0)

// invalidGI is the GPU-instance ID NVML reports for a process off MIG.
const invalidGI = 0xFFFFFFFF

// Identity reads index, UUID, name and PCI bus ID.
func (d *Device) Identity() (nvml.Identity, error) {
	if err := d.l.guard(); err != nil {
		return nvml.Identity{}, err
	}
	id := nvml.Identity{Index: d.index, Minor: -1}
	var ret gonvml.Return
	if id.UUID, ret = d.h.GetUUID(); ret != gonvml.SUCCESS {
		return id, fmt.Errorf("uuid: %w", toErr(ret))
	}
	if id.Name, ret = d.h.GetName(); ret != gonvml.SUCCESS {
		return id, fmt.Errorf("name: %w", toErr(ret))
	}
	pci, ret := d.h.GetPciInfo()
	if ret != gonvml.SUCCESS {
		return id, fmt.Errorf("pci info: %w", toErr(ret))
	}
	id.PCIBusID = cString(pci.BusId[:])
	id.Minor = -1
	if minor, ret := d.h.GetMinorNumber(); ret == gonvml.SUCCESS {
		id.Minor = minor
	}
	return id, nil
}

// Memory reads memory info v2 (with reserved memory), falling back to v1.
func (d *Device) Memory() (snapshot.Memory, error) {
	if err := d.l.guard(); err != nil {
		return snapshot.Memory{}, err
	}
	m, ret := d.h.GetMemoryInfo_v2()
	if ret == gonvml.SUCCESS {
		return snapshot.Memory{Total: m.Total, Used: m.Used, Free: m.Free, Reserved: m.Reserved}, nil
	}
	if ret != gonvml.ERROR_NOT_SUPPORTED && ret != gonvml.ERROR_FUNCTION_NOT_FOUND {
		return snapshot.Memory{}, toErr(ret)
	}
	m1, ret := d.h.GetMemoryInfo()
	if ret != gonvml.SUCCESS {
		return snapshot.Memory{}, toErr(ret)
	}
	return snapshot.Memory{Total: m1.Total, Used: m1.Used, Free: m1.Free}, nil
}

// Utilization reads the GPU and memory-controller busy ratios.
func (d *Device) Utilization() (snapshot.Utilization, error) {
	if err := d.l.guard(); err != nil {
		return snapshot.Utilization{}, err
	}
	u, ret := d.h.GetUtilizationRates()
	if ret != gonvml.SUCCESS {
		return snapshot.Utilization{}, toErr(ret)
	}
	return snapshot.Utilization{GPU: float64(u.Gpu) / 100, Memory: float64(u.Memory) / 100}, nil
}

// TemperatureCelsius reads the GPU core temperature.
func (d *Device) TemperatureCelsius() (float64, error) {
	if err := d.l.guard(); err != nil {
		return 0, err
	}
	t, ret := d.h.GetTemperature(gonvml.TEMPERATURE_GPU)
	return float64(t), toErr(ret)
}

// PowerWatts reads the board power draw.
func (d *Device) PowerWatts() (float64, error) {
	if err := d.l.guard(); err != nil {
		return 0, err
	}
	mw, ret := d.h.GetPowerUsage()
	return float64(mw) / 1000, toErr(ret)
}

// EnergyJoules reads the total energy counter (millijoules since the
// driver loaded) in joules.
func (d *Device) EnergyJoules() (float64, error) {
	if err := d.l.guard(); err != nil {
		return 0, err
	}
	mj, ret := d.h.GetTotalEnergyConsumption()
	return float64(mj) / 1000, toErr(ret)
}

// Clocks reads the current SM and memory clocks.
func (d *Device) Clocks() (float64, float64, error) {
	if err := d.l.guard(); err != nil {
		return 0, 0, err
	}
	sm, ret := d.h.GetClockInfo(gonvml.CLOCK_SM)
	if ret != gonvml.SUCCESS {
		return 0, 0, toErr(ret)
	}
	mem, ret := d.h.GetClockInfo(gonvml.CLOCK_MEM)
	if ret != gonvml.SUCCESS {
		return 0, 0, toErr(ret)
	}
	return float64(sm) * mhz, float64(mem) * mhz, nil
}

// ThrottleReasons reads the clocks-event reasons bit mask.
func (d *Device) ThrottleReasons() (uint64, error) {
	if err := d.l.guard(); err != nil {
		return 0, err
	}
	r, ret := d.h.GetCurrentClocksEventReasons()
	return r, toErr(ret)
}

// ECC reads volatile and aggregate corrected and uncorrected error totals;
// ErrNotSupported when ECC is off. A GPU without aggregate counters still
// reports the volatile ones.
func (d *Device) ECC() (snapshot.ECC, error) {
	if err := d.l.guard(); err != nil {
		return snapshot.ECC{}, err
	}
	cur, _, ret := d.h.GetEccMode()
	if ret != gonvml.SUCCESS {
		return snapshot.ECC{}, toErr(ret)
	}
	if cur != gonvml.FEATURE_ENABLED {
		return snapshot.ECC{}, fmt.Errorf("ECC disabled: %w", nvml.ErrNotSupported)
	}
	var e snapshot.ECC
	if e.Corrected, ret = d.h.GetTotalEccErrors(gonvml.MEMORY_ERROR_TYPE_CORRECTED, gonvml.VOLATILE_ECC); ret != gonvml.SUCCESS {
		return e, toErr(ret)
	}
	if e.Uncorrected, ret = d.h.GetTotalEccErrors(gonvml.MEMORY_ERROR_TYPE_UNCORRECTED, gonvml.VOLATILE_ECC); ret != gonvml.SUCCESS {
		return e, toErr(ret)
	}
	var agg snapshot.ECCCounts
	if agg.Corrected, ret = d.h.GetTotalEccErrors(gonvml.MEMORY_ERROR_TYPE_CORRECTED, gonvml.AGGREGATE_ECC); ret != gonvml.SUCCESS {
		return e, nil
	}
	if agg.Uncorrected, ret = d.h.GetTotalEccErrors(gonvml.MEMORY_ERROR_TYPE_UNCORRECTED, gonvml.AGGREGATE_ECC); ret != gonvml.SUCCESS {
		return e, nil
	}
	e.Aggregate = &agg
	return e, nil
}

// RemappedRows reads the row-remapping counters.
func (d *Device) RemappedRows() (snapshot.RemappedRows, error) {
	if err := d.l.guard(); err != nil {
		return snapshot.RemappedRows{}, err
	}
	corr, unc, pending, failed, ret := d.h.GetRemappedRows()
	if ret != gonvml.SUCCESS {
		return snapshot.RemappedRows{}, toErr(ret)
	}
	return snapshot.RemappedRows{Correctable: corr, Uncorrectable: unc, Pending: pending, Failed: failed}, nil
}

// Processes lists compute processes with their VRAM and MIG instance.
func (d *Device) Processes() ([]snapshot.Process, error) {
	if err := d.l.guard(); err != nil {
		return nil, err
	}
	infos, ret := d.h.GetComputeRunningProcesses()
	if ret != gonvml.SUCCESS {
		return nil, toErr(ret)
	}
	out := make([]snapshot.Process, 0, len(infos))
	for _, p := range infos {
		mem := p.UsedGpuMemory
		if mem == notAvailable {
			mem = 0
		}
		gi := -1
		if p.GpuInstanceId != invalidGI {
			gi = int(p.GpuInstanceId)
		}
		out = append(out, snapshot.Process{PID: p.Pid, UsedMemory: mem, MIGInstance: gi})
	}
	return out, nil
}

// ProcessSMUtil reads per-process SM utilisation samples newer than the
// previous call, keeping the newest sample of each process.
func (d *Device) ProcessSMUtil() (map[uint32]float64, error) {
	if err := d.l.guard(); err != nil {
		return nil, err
	}
	samples, ret := d.h.GetProcessUtilization(d.lastProcTS)
	if ret == gonvml.ERROR_NOT_FOUND {
		return map[uint32]float64{}, nil
	}
	if ret != gonvml.SUCCESS {
		return nil, toErr(ret)
	}
	out := make(map[uint32]float64, len(samples))
	newest := make(map[uint32]uint64, len(samples))
	for _, s := range samples {
		if s.TimeStamp >= newest[s.Pid] {
			newest[s.Pid] = s.TimeStamp
			out[s.Pid] = float64(s.SmUtil) / 100
		}
		d.lastProcTS = max(d.lastProcTS, s.TimeStamp)
	}
	return out, nil
}

// cString converts a NUL-terminated C char array.
func cString(b []int8) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}

// lostDevice stands for a GPU whose handle could not be had at start.
type lostDevice struct {
	index int
	err   error
}

func (d *lostDevice) Identity() (nvml.Identity, error) {
	return nvml.Identity{Index: d.index, Minor: -1}, d.err
}
func (d *lostDevice) Memory() (snapshot.Memory, error) { return snapshot.Memory{}, d.err }
func (d *lostDevice) Utilization() (snapshot.Utilization, error) {
	return snapshot.Utilization{}, d.err
}
func (d *lostDevice) TemperatureCelsius() (float64, error) { return 0, d.err }
func (d *lostDevice) PowerWatts() (float64, error)         { return 0, d.err }
func (d *lostDevice) EnergyJoules() (float64, error)       { return 0, d.err }
func (d *lostDevice) Clocks() (float64, float64, error)    { return 0, 0, d.err }
func (d *lostDevice) ThrottleReasons() (uint64, error)     { return 0, d.err }
func (d *lostDevice) ECC() (snapshot.ECC, error)           { return snapshot.ECC{}, d.err }
func (d *lostDevice) RemappedRows() (snapshot.RemappedRows, error) {
	return snapshot.RemappedRows{}, d.err
}
func (d *lostDevice) Processes() ([]snapshot.Process, error)     { return nil, d.err }
func (d *lostDevice) ProcessSMUtil() (map[uint32]float64, error) { return nil, d.err }
func (d *lostDevice) GPM() (nvml.GPM, error)                     { return nvml.GPM{}, d.err }
func (d *lostDevice) MIGDevices() ([]snapshot.MIGDevice, error)  { return nil, d.err }
