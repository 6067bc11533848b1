package pods

import (
	"slices"

	"github.com/headroom-dev/headroom/collector/podresources"
	"github.com/headroom-dev/headroom/snapshot"
)

// podKey is a pod's namespace and name.
type podKey = [2]string

// migSlices finds the MIG slices each pod holds: those assigned to it by
// UUID (the NVIDIA device plugin's MIG-… IDs) or by GKE's nvidia<N>/gi<M>,
// and those its processes run on (procs names each process's pod; NVML
// gives the process's GPU instance).
func migSlices(gpus []snapshot.GPU, alloc *podresources.View, procs []procOwner) map[podKey][]string {
	out := map[podKey][]string{}
	add := func(k podKey, uuid string) {
		if !slices.Contains(out[k], uuid) {
			out[k] = append(out[k], uuid)
		}
	}
	if alloc != nil {
		for _, as := range alloc.Assignments {
			if uuid, ok := sliceOf(gpus, as.Device); ok {
				add(podKey{as.Namespace, as.Pod}, uuid)
			}
		}
	}
	for _, o := range procs {
		g := &gpus[o.gpu]
		gi := g.Processes[o.proc].MIGInstance
		if gi < 0 {
			continue
		}
		for _, m := range g.MIG {
			if m.GPUInstanceID == gi {
				add(podKey{o.namespace, o.pod}, m.UUID)
			}
		}
	}
	for _, uuids := range out {
		slices.Sort(uuids)
	}
	return out
}

// sliceOf finds the MIG slice a device reference names, if it names one
// the snapshot can tell. DRA's MIG names carry a placement, which the
// snapshot does not: they map to their GPU only.
func sliceOf(gpus []snapshot.GPU, d podresources.DeviceRef) (string, bool) {
	for _, g := range gpus {
		for _, m := range g.MIG {
			switch {
			case d.Kind == podresources.KindMIG && m.UUID == d.UUID:
				return m.UUID, true
			case d.Kind == podresources.KindIndexMIG && g.Index == d.Index && m.GPUInstanceID == d.Instance:
				return m.UUID, true
			}
		}
	}
	return "", false
}
