package exporter

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/agent/snapshot"
)

// gpuLabels come first on every per-GPU metric.
var gpuLabels = []string{"node", "gpu", "uuid", "model"}

func withGPU(extra ...string) []string {
	return append(append([]string(nil), gpuLabels...), extra...)
}

type gpuDefs struct {
	info, lost                             *def
	memTotal, memUsed, memFree, memReserve *def
	util, memUtil, smActive, smOccupancy   *def
	temp, power, smClock, memClock         *def
	throttled                              *def
	ecc, remapped, remapPending, remapFail *def
	xid, processes                         *def
	procMem, procSM                        *def
	migTotal, migUsed                      *def
}

func (e *Exporter) newGPUDefs() gpuDefs {
	g := func(name, typ, help string, extra ...string) *def {
		return e.def(name, typ, "nvml", help, withGPU(extra...)...)
	}
	return gpuDefs{
		info:         g("headroom_gpu_info", "gauge", "Always 1; labels identify the GPU and driver.", "pci_bus_id", "driver_version"),
		lost:         g("headroom_gpu_lost", "gauge", "1 if the GPU fell off the bus (NVML_ERROR_GPU_IS_LOST); its other readings are then absent."),
		memTotal:     g("headroom_gpu_memory_total_bytes", "gauge", "Framebuffer size."),
		memUsed:      g("headroom_gpu_memory_used_bytes", "gauge", "Framebuffer memory allocated by processes."),
		memFree:      g("headroom_gpu_memory_free_bytes", "gauge", "Framebuffer memory free for allocation."),
		memReserve:   g("headroom_gpu_memory_reserved_bytes", "gauge", "Framebuffer memory the driver reserves."),
		util:         g("headroom_gpu_utilization_ratio", "gauge", "Share of the last sample period in which a kernel ran (0-1)."),
		memUtil:      g("headroom_gpu_memory_utilization_ratio", "gauge", "Share of the last sample period in which device memory was read or written (0-1)."),
		smActive:     g("headroom_gpu_sm_active_ratio", "gauge", "GPM SM activity between samples (0-1); Hopper and later."),
		smOccupancy:  g("headroom_gpu_sm_occupancy_ratio", "gauge", "GPM SM warp occupancy between samples (0-1); Hopper and later."),
		temp:         g("headroom_gpu_temperature_celsius", "gauge", "GPU core temperature."),
		power:        g("headroom_gpu_power_watts", "gauge", "Board power draw."),
		smClock:      g("headroom_gpu_sm_clock_hertz", "gauge", "Current SM clock."),
		memClock:     g("headroom_gpu_memory_clock_hertz", "gauge", "Current memory clock."),
		throttled:    g("headroom_gpu_clock_throttled", "gauge", "1 while the clocks are held down for the reason.", "reason"),
		ecc:          g("headroom_gpu_ecc_errors_total", "counter", "ECC errors since the driver loaded (volatile).", "type"),
		remapped:     g("headroom_gpu_remapped_rows", "gauge", "Memory rows remapped, by cause.", "type"),
		remapPending: g("headroom_gpu_row_remap_pending", "gauge", "1 if a row remap waits for a GPU reset."),
		remapFail:    g("headroom_gpu_row_remap_failed", "gauge", "1 if a row remap failed."),
		xid:          g("headroom_gpu_xid_errors_total", "counter", "Xid errors seen since the agent started, by code.", "xid"),
		processes:    g("headroom_gpu_processes", "gauge", "Compute processes (CUDA contexts) on the GPU."),
		procMem:      g("headroom_gpu_process_memory_used_bytes", "gauge", "Framebuffer memory held by one process.", "pid", "mig_instance"),
		procSM:       g("headroom_gpu_process_sm_utilization_ratio", "gauge", "One process's SM utilisation over the last sample period (0-1).", "pid", "mig_instance"),
		migTotal:     g("headroom_gpu_mig_memory_total_bytes", "gauge", "Framebuffer size of a MIG device.", "mig_instance", "mig_uuid", "mig_profile"),
		migUsed:      g("headroom_gpu_mig_memory_used_bytes", "gauge", "Framebuffer memory used on a MIG device.", "mig_instance", "mig_uuid", "mig_profile"),
	}
}

// throttleReasons names the clocks-event bits of NVML's mask, in bit order.
var throttleReasons = []struct {
	bit  uint64
	name string
}{
	{0x1, "gpu_idle"},
	{0x2, "applications_clocks"},
	{0x4, "sw_power_cap"},
	{0x8, "hw_slowdown"},
	{0x10, "sync_boost"},
	{0x20, "sw_thermal"},
	{0x40, "hw_thermal"},
	{0x80, "hw_power_brake"},
	{0x100, "display_clocks"},
}

func (e *Exporter) collectGPUs(ch chan<- prometheus.Metric, s *snapshot.Snapshot) {
	for i := range s.GPUs {
		e.collectGPU(ch, s, &s.GPUs[i])
	}
}

func (e *Exporter) collectGPU(ch chan<- prometheus.Metric, s *snapshot.Snapshot, g *snapshot.GPU) {
	d := e.gpu
	l := []string{s.Node, strconv.Itoa(g.Index), g.UUID, g.Name}
	with := func(extra ...string) []string {
		return append(append(make([]string, 0, len(l)+len(extra)), l...), extra...)
	}

	emit(ch, d.info, 1, with(g.PCIBusID, s.System.DriverVersion)...)
	emit(ch, d.lost, b2f(g.Lost), l...)
	for code, n := range g.XidErrors {
		emit(ch, d.xid, float64(n), with(strconv.FormatUint(code, 10))...)
	}
	if g.Lost {
		return
	}
	if m := g.Memory; m != nil {
		emit(ch, d.memTotal, float64(m.Total), l...)
		emit(ch, d.memUsed, float64(m.Used), l...)
		emit(ch, d.memFree, float64(m.Free), l...)
		emit(ch, d.memReserve, float64(m.Reserved), l...)
	}
	if u := g.Utilization; u != nil {
		emit(ch, d.util, u.GPU, l...)
		emit(ch, d.memUtil, u.Memory, l...)
	}
	opt(ch, d.smActive, g.SMActive, l)
	opt(ch, d.smOccupancy, g.SMOccupancy, l)
	opt(ch, d.temp, g.TemperatureCelsius, l)
	opt(ch, d.power, g.PowerWatts, l)
	opt(ch, d.smClock, g.SMClockHz, l)
	opt(ch, d.memClock, g.MemoryClockHz, l)
	if r := g.ThrottleReasons; r != nil {
		for _, t := range throttleReasons {
			emit(ch, d.throttled, b2f(*r&t.bit != 0), with(t.name)...)
		}
	}
	e.collectHealth(ch, g, l, with)
	e.collectProcesses(ch, g, l, with)
}

func (e *Exporter) collectHealth(ch chan<- prometheus.Metric, g *snapshot.GPU, l []string, with func(...string) []string) {
	d := e.gpu
	if c := g.ECC; c != nil {
		emit(ch, d.ecc, float64(c.Corrected), with("corrected")...)
		emit(ch, d.ecc, float64(c.Uncorrected), with("uncorrected")...)
	}
	if r := g.RemappedRows; r != nil {
		emit(ch, d.remapped, float64(r.Correctable), with("correctable")...)
		emit(ch, d.remapped, float64(r.Uncorrectable), with("uncorrectable")...)
		emit(ch, d.remapPending, b2f(r.Pending), l...)
		emit(ch, d.remapFail, b2f(r.Failed), l...)
	}
}

func (e *Exporter) collectProcesses(ch chan<- prometheus.Metric, g *snapshot.GPU, l []string, with func(...string) []string) {
	d := e.gpu
	if g.Processes != nil || g.Memory != nil {
		emit(ch, d.processes, float64(len(g.Processes)), l...)
	}
	for _, p := range g.Processes {
		pid, mig := strconv.FormatUint(uint64(p.PID), 10), migLabel(p.MIGInstance)
		emit(ch, d.procMem, float64(p.UsedMemory), with(pid, mig)...)
		if p.SMUtil != nil {
			emit(ch, d.procSM, *p.SMUtil, with(pid, mig)...)
		}
	}
	for _, m := range g.MIG {
		if m.Memory == nil {
			continue
		}
		ml := with(strconv.Itoa(m.GPUInstanceID), m.UUID, m.Name)
		emit(ch, d.migTotal, float64(m.Memory.Total), ml...)
		emit(ch, d.migUsed, float64(m.Memory.Used), ml...)
	}
}

func migLabel(gi int) string {
	if gi < 0 {
		return ""
	}
	return strconv.Itoa(gi)
}

func opt(ch chan<- prometheus.Metric, d *def, v *float64, labels []string) {
	if v != nil {
		emit(ch, d, *v, labels...)
	}
}
