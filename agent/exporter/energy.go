package exporter

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/headroom-dev/headroom/snapshot"
)

// energyDefs are the energy collector's estimates (collector/energy says
// how they are computed).
type energyDefs struct {
	container, unattributed, perToken *def
}

func (e *Exporter) newEnergyDefs() energyDefs {
	d := func(name, typ, help string, labels ...string) *def {
		return e.def(name, typ, "energy", help, append([]string{"node"}, labels...)...)
	}
	return energyDefs{
		container: d("headroom_container_gpu_energy_joules_total", "counter",
			"Estimated energy the container's processes used on the GPU since the agent started: each sample interval's measured GPU energy times the processes' share of that interval's SM time (NVML per-process SM utilisation).",
			"namespace", "pod", "container", "gpu", "uuid"),
		unattributed: d("headroom_gpu_energy_unattributed_joules_total", "counter",
			"Estimated GPU energy charged to no pod since the agent started, by reason: idle (no process's kernels on the SMs), unowned (processes in no pod) or unknown (no per-process utilisation to split by).",
			"gpu", "uuid", "reason"),
		perToken: d("headroom_pod_energy_per_output_token_joules", "gauge",
			"Estimated GPU energy per output token: the pod's estimated energy since its model server's generated-token counter last grew, divided by that growth.",
			"namespace", "pod", "engine"),
	}
}

func (e *Exporter) gatherEnergy(b *builder, s *snapshot.Snapshot) {
	en := s.Energy
	if en == nil {
		return
	}
	d := e.en
	node := []*dto.LabelPair{b.lp("node", s.Node)}
	index := make(map[string]string, len(s.GPUs))
	for _, g := range s.GPUs {
		index[g.UUID] = itoa(g.Index)
	}
	for _, c := range en.Containers {
		b.add(d.container, c.Joules, node, b.lp("container", c.Container), b.lp("gpu", index[c.GPU]),
			b.lp("namespace", c.Namespace), b.lp("pod", c.Pod), b.lp("uuid", c.GPU))
	}
	for _, g := range s.GPUs {
		u, ok := en.GPUs[g.UUID]
		if !ok {
			continue
		}
		l := mergePairs(node, []*dto.LabelPair{b.lp("gpu", itoa(g.Index)), b.lp("uuid", g.UUID)})
		b.add(d.unattributed, u.Idle, l, b.sharedLP("reason", "idle"))
		b.add(d.unattributed, u.Unowned, l, b.sharedLP("reason", "unowned"))
		b.add(d.unattributed, u.Unknown, l, b.sharedLP("reason", "unknown"))
	}
	for _, p := range en.PerOutputToken {
		b.add(d.perToken, p.Joules, node, b.lp("engine", p.Engine), b.lp("namespace", p.Namespace), b.lp("pod", p.Pod))
	}
}
