package nvml

import "github.com/headroom-dev/headroom/snapshot"

// sampleGPU takes every reading of one GPU. A lost GPU keeps its identity
// and reports no readings; a reading the GPU lacks is simply absent.
func (s *Source) sampleGPU(g *gpuState) snapshot.GPU {
	out := snapshot.GPU{
		Index:     g.id.Index,
		UUID:      g.id.UUID,
		Name:      g.id.Name,
		PCIBusID:  g.id.PCIBusID,
		XidErrors: s.xids.counts(g.id.Index),
	}
	if g.id.Minor >= 0 {
		out.Minor = &g.id.Minor
	}
	lost := false
	d := g.dev

	out.Memory = ptr(read(s, g, &lost, "memory", d.Memory))
	out.Utilization = ptr(read(s, g, &lost, "utilization", d.Utilization))
	if gpm, ok := read(s, g, &lost, "gpm", d.GPM); ok {
		out.SMActive, out.SMOccupancy = &gpm.SMActive, &gpm.SMOccupancy
	}
	out.TemperatureCelsius = ptr(read(s, g, &lost, "temperature", d.TemperatureCelsius))
	out.PowerWatts = ptr(read(s, g, &lost, "power", d.PowerWatts))
	out.EnergyJoules = ptr(read(s, g, &lost, "energy", d.EnergyJoules))
	type clocks struct{ sm, mem float64 }
	if c, ok := read(s, g, &lost, "clocks", func() (clocks, error) {
		sm, mem, err := d.Clocks()
		return clocks{sm, mem}, err
	}); ok {
		out.SMClockHz, out.MemoryClockHz = &c.sm, &c.mem
	}
	out.ThrottleReasons = ptr(read(s, g, &lost, "throttle_reasons", d.ThrottleReasons))
	out.ECC = ptr(read(s, g, &lost, "ecc", d.ECC))
	out.RemappedRows = ptr(read(s, g, &lost, "remapped_rows", d.RemappedRows))
	out.MIG, _ = read(s, g, &lost, "mig", d.MIGDevices)
	out.Processes = s.sampleProcesses(g, &lost)

	if lost {
		out = snapshot.GPU{Index: out.Index, UUID: out.UUID, Name: out.Name, PCIBusID: out.PCIBusID, Minor: out.Minor, XidErrors: out.XidErrors, Lost: true}
	}
	if lost != g.wasLost {
		if lost {
			s.logger.Error("GPU is lost (fell off the bus); reporting it unhealthy", "gpu", g.id.Index, "uuid", g.id.UUID)
		} else {
			s.logger.Info("GPU answers again", "gpu", g.id.Index, "uuid", g.id.UUID)
		}
		g.wasLost = lost
	}
	return out
}

// sampleProcesses lists compute processes with their SM utilisation.
func (s *Source) sampleProcesses(g *gpuState, lost *bool) []snapshot.Process {
	procs, ok := read(s, g, lost, "processes", g.dev.Processes)
	if !ok {
		return nil
	}
	util, _ := read(s, g, lost, "process_utilization", g.dev.ProcessSMUtil)
	for i := range procs {
		if u, ok := util[procs[i].PID]; ok {
			procs[i].SMUtil = &u
		}
	}
	return procs
}
