package pods

import (
	"cmp"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/headroom-dev/headroom/collector/cgroups"
	"github.com/headroom-dev/headroom/collector/cri"
	"github.com/headroom-dev/headroom/collector/podresources"
	"github.com/headroom-dev/headroom/snapshot"
)

// joinInput is everything one join needs; only resolve may do I/O.
type joinInput struct {
	alloc   *podresources.View // nil before the kubelet first answered
	runtime *cri.View          // nil before the runtime first answered
	// resolve maps a PID to its container (cached by the source).
	resolve func(pid uint32) (cgroups.Ref, error)
	// memory holds cgroup readings by container ID.
	memory   map[string]*snapshot.ContainerMemory
	sidecars map[string]bool
}

// procOwner names the container of one GPU process: the process at
// GPUs[gpu].Processes[proc].
type procOwner struct {
	gpu, proc                 int
	namespace, pod, container string
}

// setOwners fills each process's Namespace, Pod and Container.
func setOwners(gpus []snapshot.GPU, owners []procOwner) {
	for _, o := range owners {
		p := &gpus[o.gpu].Processes[o.proc]
		p.Namespace, p.Pod, p.Container = o.namespace, o.pod, o.container
	}
}

// join attributes this tick's GPU processes to containers and builds the
// attribution; it only reads gpus, and returns the owner of each process
// it attributed (setOwners fills them in). stale reports a process in a
// Kubernetes container the runtime's view does not know yet, which is
// worth an early refresh; processes outside Kubernetes (a host service
// holding a GPU) are not.
func join(gpus []snapshot.GPU, in joinInput) (a *snapshot.Attribution, procs []procOwner, stale bool) {
	a = &snapshot.Attribution{Owners: owners(gpus, in.alloc)}
	use := map[string]map[string]snapshot.GPUUse{} // container ID → GPU UUID → use
	gpuPods := map[string]bool{}                   // pod UIDs
	for gi := range gpus {
		g := &gpus[gi]
		for pi := range g.Processes {
			p := &g.Processes[pi]
			ref, err := in.resolve(p.PID)
			if errors.Is(err, cgroups.ErrProcessGone) {
				continue // exited since NVML listed it
			}
			if err != nil {
				a.UnattributedProcesses++
				continue
			}
			if in.runtime == nil {
				a.UnattributedProcesses++
				stale = true
				continue
			}
			pod, ctr, ok := in.runtime.Container(ref.ContainerID)
			if !ok {
				a.UnattributedProcesses++
				stale = true
				continue
			}
			procs = append(procs, procOwner{gpu: gi, proc: pi, namespace: pod.Namespace, pod: pod.Name, container: ctr.Name})
			gpuPods[pod.UID] = true
			if use[ctr.ID] == nil {
				use[ctr.ID] = map[string]snapshot.GPUUse{}
			}
			u := use[ctr.ID][g.UUID]
			u.Memory += p.UsedMemory
			u.Contexts++
			use[ctr.ID][g.UUID] = u
		}
	}
	for uid := range assignedPods(in.alloc, in.runtime) {
		gpuPods[uid] = true
	}
	if in.runtime == nil {
		return a, procs, stale
	}
	assigned := assignedGPUs(a.Owners)
	mig := migSlices(gpus, in.alloc, procs)
	for uid := range gpuPods {
		pod, ok := in.runtime.Pod(uid)
		if !ok {
			continue
		}
		sp, meshVRAM := buildPod(pod, assigned[[2]string{pod.Namespace, pod.Name}], use, in)
		sp.MIG = mig[podKey{pod.Namespace, pod.Name}]
		a.MeshVRAM += meshVRAM
		a.Pods = append(a.Pods, sp)
	}
	slices.SortFunc(a.Pods, func(x, y snapshot.Pod) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	return a, procs, stale
}

// buildPod makes the snapshot pod of a runtime pod: its containers with
// their memory and GPU use, its GPUs (assigned plus used, sorted) and its
// model-server metadata. meshVRAM is what its sidecars hold.
func buildPod(pod cri.Pod, assigned []string, use map[string]map[string]snapshot.GPUUse, in joinInput) (sp snapshot.Pod, meshVRAM uint64) {
	sp = snapshot.Pod{UID: pod.UID, Namespace: pod.Namespace, Name: pod.Name, IP: pod.IP,
		Engine: pod.Meta.Engine, MetricsPort: port(pod.Meta.MetricsPort), MetricsPath: pod.Meta.MetricsPath}
	gpuSet := map[string]bool{}
	for _, g := range assigned {
		gpuSet[g] = true
	}
	for _, c := range pod.Containers {
		for g := range use[c.ID] {
			gpuSet[g] = true
		}
		sc := snapshot.Container{Name: c.Name, ID: c.ID, Sidecar: in.sidecars[c.Name], Memory: in.memory[c.ID], GPUs: use[c.ID]}
		if sc.Sidecar {
			for _, u := range use[c.ID] {
				meshVRAM += u.Memory
			}
		}
		sp.Containers = append(sp.Containers, sc)
	}
	sp.GPUs = slices.Sorted(maps.Keys(gpuSet))
	return sp, meshVRAM
}

// assignedGPUs inverts the owners: namespace and pod → GPU UUIDs.
func assignedGPUs(owners map[string][]snapshot.Owner) map[[2]string][]string {
	out := map[[2]string][]string{}
	for uuid, os := range owners {
		for _, o := range os {
			k := [2]string{o.Namespace, o.Pod}
			if !slices.Contains(out[k], uuid) {
				out[k] = append(out[k], uuid)
			}
		}
	}
	return out
}

// port reads a metrics-port annotation; 0 when unset or not a port.
func port(s string) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0
	}
	return n
}

// assignedPods returns the UIDs of pods the kubelet assigned a GPU to.
// Pod-resources names pods by namespace and name; the runtime has the UIDs.
func assignedPods(alloc *podresources.View, rt *cri.View) map[string]bool {
	out := map[string]bool{}
	if alloc == nil || rt == nil {
		return out
	}
	byName := map[[2]string]string{}
	for _, p := range rt.Pods {
		byName[[2]string{p.Namespace, p.Name}] = p.UID
	}
	for _, as := range alloc.Assignments {
		if uid, ok := byName[[2]string{as.Namespace, as.Pod}]; ok {
			out[uid] = true
		}
	}
	return out
}

// owners maps each assigned device to the UUID of its physical GPU.
func owners(gpus []snapshot.GPU, alloc *podresources.View) map[string][]snapshot.Owner {
	out := map[string][]snapshot.Owner{}
	if alloc == nil {
		return out
	}
	for _, as := range alloc.Assignments {
		uuid, ok := gpuOf(gpus, as.Device)
		if !ok {
			continue
		}
		o := snapshot.Owner{Namespace: as.Namespace, Pod: as.Pod, Container: as.Container}
		if !slices.Contains(out[uuid], o) {
			out[uuid] = append(out[uuid], o)
		}
	}
	return out
}

// gpuOf finds the physical GPU a device reference names. DRA names GPUs
// (and the parents of MIG devices) by minor number, which NVML reports
// beside the index; the two often differ.
func gpuOf(gpus []snapshot.GPU, d podresources.DeviceRef) (string, bool) {
	for _, g := range gpus {
		switch d.Kind {
		case podresources.KindGPU:
			if g.UUID == d.UUID {
				return g.UUID, true
			}
		case podresources.KindMIG:
			for _, m := range g.MIG {
				if m.UUID == d.UUID {
					return g.UUID, true
				}
			}
		case podresources.KindIndex, podresources.KindIndexMIG, podresources.KindIndexVGPU:
			if g.Index == d.Index {
				return g.UUID, true
			}
		case podresources.KindMinor, podresources.KindMinorMIG:
			if g.Minor != nil && *g.Minor == d.Index {
				return g.UUID, true
			}
		}
	}
	return "", false
}
