package exporter

import (
	"strconv"

	dto "github.com/prometheus/client_model/go"

	"github.com/headroom-dev/headroom/snapshot"
)

// gpuLabels come first on every per-GPU metric; ownerLabels follow on the
// GPU-wide ones: the pod and container holding the GPU, as dcgm-exporter
// users expect, filled when exactly one container holds it and empty for
// an unassigned or shared GPU (headroom_gpu_owner_info lists all owners).
var (
	gpuLabels   = []string{"node", "gpu", "uuid", "model"}
	ownerLabels = []string{"namespace", "pod", "container"}
)

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
	eccAggregate, energy                   *def
	xid, processes                         *def
	procMem, procSM                        *def
	migTotal, migUsed                      *def
	migSMActive                            *def
}

func (e *Exporter) newGPUDefs() gpuDefs {
	g := func(name, typ, help string, extra ...string) *def {
		return e.def(name, typ, "nvml", help, withGPU(append(append([]string(nil), ownerLabels...), extra...)...)...)
	}
	// Per-process metrics carry the process's own pod and container.
	gp := func(name, typ, help string, extra ...string) *def {
		return e.def(name, typ, "nvml", help, withGPU(append(extra, ownerLabels...)...)...)
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
		energy:       g("headroom_gpu_energy_joules_total", "counter", "Energy the GPU used since the driver loaded (NVML total energy consumption, measured; Volta and later)."),
		smClock:      g("headroom_gpu_sm_clock_hertz", "gauge", "Current SM clock."),
		memClock:     g("headroom_gpu_memory_clock_hertz", "gauge", "Current memory clock."),
		throttled:    g("headroom_gpu_clock_throttled", "gauge", "1 while the clocks are held down for the reason.", "reason"),
		ecc:          g("headroom_gpu_ecc_errors_total", "counter", "ECC errors since the driver loaded or the GPU was last reset (volatile), by type: corrected or uncorrected.", "type"),
		eccAggregate: g("headroom_gpu_ecc_errors_aggregate_total", "counter", "ECC errors over the GPU's life (aggregate: kept across driver reloads and GPU resets).", "type"),
		remapped:     g("headroom_gpu_remapped_rows", "gauge", "Memory rows remapped, by cause.", "type"),
		remapPending: g("headroom_gpu_row_remap_pending", "gauge", "1 if a row remap waits for a GPU reset."),
		remapFail:    g("headroom_gpu_row_remap_failed", "gauge", "1 if a row remap failed."),
		xid:          g("headroom_gpu_xid_errors_total", "counter", "Xid errors seen since the agent started, by code.", "xid"),
		processes:    g("headroom_gpu_processes", "gauge", "Compute processes (CUDA contexts) on the GPU."),
		procMem:      gp("headroom_gpu_process_memory_used_bytes", "gauge", "Framebuffer memory held by one process.", "pid", "mig_instance"),
		procSM:       gp("headroom_gpu_process_sm_utilization_ratio", "gauge", "One process's SM utilisation over the last sample period (0-1).", "pid", "mig_instance"),
		migTotal:     g("headroom_gpu_mig_memory_total_bytes", "gauge", "Framebuffer size of a MIG device.", "mig_instance", "mig_uuid", "mig_profile"),
		migUsed:      g("headroom_gpu_mig_memory_used_bytes", "gauge", "Framebuffer memory used on a MIG device.", "mig_instance", "mig_uuid", "mig_profile"),
		migSMActive:  g("headroom_gpu_mig_sm_active_ratio", "gauge", "GPM SM activity of a MIG device between samples (0-1), over its own SMs; Hopper and later.", "mig_instance", "mig_uuid", "mig_profile"),
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

func (e *Exporter) gatherGPUs(b *builder, s *snapshot.Snapshot) {
	node := b.lp("node", s.Node)
	for i := range s.GPUs {
		e.gatherGPU(b, s, node, &s.GPUs[i])
	}
}

func (e *Exporter) gatherGPU(b *builder, s *snapshot.Snapshot, node *dto.LabelPair, g *snapshot.GPU) {
	d := e.gpu
	// In label-name order: gpu, model, node, uuid.
	base := []*dto.LabelPair{b.lp("gpu", itoa(g.Index)), b.lp("model", g.Name), node, b.lp("uuid", g.UUID)}
	var owner snapshot.Owner
	if a := s.Attribution; a != nil && len(a.Owners[g.UUID]) == 1 {
		owner = a.Owners[g.UUID][0]
	}
	l := mergePairs(base, []*dto.LabelPair{b.sharedLP("namespace", owner.Namespace), b.sharedLP("pod", owner.Pod), b.sharedLP("container", owner.Container)})

	b.add(d.info, 1, l, b.lp("pci_bus_id", g.PCIBusID), b.lp("driver_version", s.System.DriverVersion))
	b.add(d.lost, b2f(g.Lost), l)
	for code, n := range g.XidErrors {
		b.add(d.xid, float64(n), l, b.lp("xid", strconv.FormatUint(code, 10)))
	}
	if g.Lost {
		return
	}
	if m := g.Memory; m != nil {
		b.add(d.memTotal, float64(m.Total), l)
		b.add(d.memUsed, float64(m.Used), l)
		b.add(d.memFree, float64(m.Free), l)
		b.add(d.memReserve, float64(m.Reserved), l)
	}
	if u := g.Utilization; u != nil {
		b.add(d.util, u.GPU, l)
		b.add(d.memUtil, u.Memory, l)
	}
	b.opt(d.smActive, g.SMActive, l)
	b.opt(d.smOccupancy, g.SMOccupancy, l)
	b.opt(d.temp, g.TemperatureCelsius, l)
	b.opt(d.power, g.PowerWatts, l)
	b.opt(d.energy, g.EnergyJoules, l)
	b.opt(d.smClock, g.SMClockHz, l)
	b.opt(d.memClock, g.MemoryClockHz, l)
	if r := g.ThrottleReasons; r != nil {
		for _, t := range throttleReasons {
			b.add(d.throttled, b2f(*r&t.bit != 0), l, b.lp("reason", t.name))
		}
	}
	e.gatherHealth(b, g, l)
	e.gatherProcesses(b, g, l, base)
}

func (e *Exporter) gatherHealth(b *builder, g *snapshot.GPU, l []*dto.LabelPair) {
	d := e.gpu
	if c := g.ECC; c != nil {
		b.add(d.ecc, float64(c.Corrected), l, b.lp("type", "corrected"))
		b.add(d.ecc, float64(c.Uncorrected), l, b.lp("type", "uncorrected"))
		if a := c.Aggregate; a != nil {
			b.add(d.eccAggregate, float64(a.Corrected), l, b.lp("type", "corrected"))
			b.add(d.eccAggregate, float64(a.Uncorrected), l, b.lp("type", "uncorrected"))
		}
	}
	if r := g.RemappedRows; r != nil {
		b.add(d.remapped, float64(r.Correctable), l, b.lp("type", "correctable"))
		b.add(d.remapped, float64(r.Uncorrectable), l, b.lp("type", "uncorrectable"))
		b.add(d.remapPending, b2f(r.Pending), l)
		b.add(d.remapFail, b2f(r.Failed), l)
	}
}

// gatherProcesses emits per-process series on base labels (each process
// names its own container) and the GPU-wide ones on l.
func (e *Exporter) gatherProcesses(b *builder, g *snapshot.GPU, l, base []*dto.LabelPair) {
	d := e.gpu
	if g.Processes != nil || g.Memory != nil {
		b.add(d.processes, float64(len(g.Processes)), l)
	}
	for _, p := range g.Processes {
		extra := []*dto.LabelPair{b.lp("pid", strconv.FormatUint(uint64(p.PID), 10)), b.sharedLP("mig_instance", migLabel(p.MIGInstance)),
			b.sharedLP("namespace", p.Namespace), b.sharedLP("pod", p.Pod), b.sharedLP("container", p.Container)}
		b.add(d.procMem, float64(p.UsedMemory), base, extra...)
		if p.SMUtil != nil {
			b.add(d.procSM, *p.SMUtil, base, extra...)
		}
	}
	for _, m := range g.MIG {
		extra := []*dto.LabelPair{b.lp("mig_instance", itoa(m.GPUInstanceID)), b.lp("mig_profile", m.Name), b.lp("mig_uuid", m.UUID)}
		if m.SMActive != nil {
			b.add(d.migSMActive, *m.SMActive, l, extra...)
		}
		if m.Memory == nil {
			continue
		}
		b.add(d.migTotal, float64(m.Memory.Total), l, extra...)
		b.add(d.migUsed, float64(m.Memory.Used), l, extra...)
	}
}

func migLabel(gi int) string {
	if gi < 0 {
		return ""
	}
	return itoa(gi)
}

// opt adds a sample of d when v is known.
func (b *builder) opt(d *def, v *float64, l []*dto.LabelPair) {
	if v != nil {
		b.add(d, *v, l)
	}
}
