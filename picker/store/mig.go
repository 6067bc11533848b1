package store

import (
	"slices"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// appendGPU appends g to gpus as the pod sees it: the whole GPU, or, when
// the pod holds MIG slices of g (mig), one entry per slice with the
// slice's own memory and SM activity in place of the GPU's, so the
// scorers judge the slice the pod runs on, not its neighbours. A slice
// entry keeps the GPU's UUID (its health history is the GPU's), health,
// temperature, power and throttle reasons, which the slices share; it has
// no utilisation, occupancy or process list, which NVML gives for the
// whole GPU only.
func appendGPU(gpus []*telemetryv1.GPU, g *telemetryv1.GPU, mig []string) []*telemetryv1.GPU {
	if len(mig) == 0 || len(g.GetMig()) == 0 {
		return append(gpus, g)
	}
	n := len(gpus)
	for _, m := range g.GetMig() {
		if !slices.Contains(mig, m.GetUuid()) {
			continue
		}
		gpus = append(gpus, &telemetryv1.GPU{
			Index: g.GetIndex(), Uuid: g.GetUuid(), Name: g.GetName(), Health: g.GetHealth(),
			MemoryTotalBytes: m.GetMemoryTotalBytes(), MemoryUsedBytes: m.GetMemoryUsedBytes(), MemoryFreeBytes: m.GetMemoryFreeBytes(),
			SmActive:           m.SmActive,
			TemperatureCelsius: g.TemperatureCelsius, PowerWatts: g.PowerWatts, ThrottleReasons: g.GetThrottleReasons(),
		})
	}
	if len(gpus) == n {
		return append(gpus, g) // none of the pod's slices is on g
	}
	return gpus
}
