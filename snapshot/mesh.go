package snapshot

// Mesh is what the service mesh's node proxy costs on the node: filled by
// the ztunnel sources. Sidecars are per-pod containers and live in
// Attribution (Container.Sidecar).
type Mesh struct {
	// Ztunnel is nil when the ztunnel collector is off.
	Ztunnel *Ztunnel
}

// Ztunnel is the node's ztunnel (Istio ambient). Absent ztunnel
// (sidecar mode, no mesh) is a normal state: Present false.
type Ztunnel struct {
	Present bool
	// Namespace and Pod name ztunnel's pod when the runtime knows it.
	Namespace, Pod string
	PIDs           []uint32
	// Memory is its container cgroup's memory and CPU (summed when
	// several); nil when unreadable.
	Memory *ContainerMemory
	// Traffic is what the eBPF programs counted; nil when the eBPF source
	// is off or unavailable.
	Traffic *ZtunnelTraffic
}

// ZtunnelTraffic is what the eBPF programs counted since they loaded.
type ZtunnelTraffic struct {
	// Flows are by pod (network namespace) and leg, sorted.
	Flows []ZtunnelFlow
	// Threads are ztunnel's threads with their CPU, sorted by TID.
	Threads []ZtunnelThread
	// Programs are the eBPF programs and their own cost.
	Programs []BPFProgram
}

// Legs of a ztunnel flow.
const (
	LegApp     = "app"     // inside a pod's network namespace, to or from the app
	LegHBONE   = "hbone"   // the mTLS tunnel: port 15008 or SO_MARK 0x539
	LegControl = "control" // ztunnel's own namespace: xDS, CA, metrics
)

// ZtunnelFlow is the traffic of one pod's network namespace on one leg.
type ZtunnelFlow struct {
	// Namespace, Pod and UID name the pod whose network namespace the
	// sockets are in; empty when it could not be told.
	Namespace, Pod, UID string
	Netns               uint32
	Leg                 string
	BytesSent           uint64
	BytesReceived       uint64
	Opened, Closed      uint64
}

// Active is connections open now.
func (f ZtunnelFlow) Active() uint64 {
	if f.Closed > f.Opened {
		return 0
	}
	return f.Opened - f.Closed
}

// ZtunnelThread is one ztunnel thread's CPU from sched_switch.
type ZtunnelThread struct {
	PID, TID   uint32
	Name       string
	CPUSeconds float64
}

// BPFProgram is one eBPF program and, with kernel BPF stats on, its cost.
type BPFProgram struct {
	Name     string
	Attached bool
	// Err says why it is not attached.
	Err        string
	RunCount   uint64
	RunSeconds float64
}

// PodShare is a pod's estimated share of ztunnel's CPU.
type PodShare struct {
	Namespace, Pod, UID string
	CPUSeconds          float64
}

// EstimatedPodCPU splits ztunnel's cgroup CPU between pods by their share
// of the bytes it moved (all legs but control). ztunnel's worker threads
// serve every pod, so this is an estimate, never a measurement. Nil
// without traffic or CPU readings.
func (z *Ztunnel) EstimatedPodCPU() []PodShare {
	if z == nil || z.Traffic == nil || z.Memory == nil {
		return nil
	}
	var total uint64
	byPod := map[[3]string]uint64{}
	var order [][3]string
	for _, f := range z.Traffic.Flows {
		if f.Leg == LegControl || f.Pod == "" {
			continue
		}
		k := [3]string{f.Namespace, f.Pod, f.UID}
		if _, ok := byPod[k]; !ok {
			order = append(order, k)
		}
		b := f.BytesSent + f.BytesReceived
		byPod[k] += b
		total += b
	}
	if total == 0 {
		return nil
	}
	out := make([]PodShare, 0, len(order))
	for _, k := range order {
		out = append(out, PodShare{Namespace: k[0], Pod: k[1], UID: k[2], CPUSeconds: z.Memory.CPUSeconds * float64(byPod[k]) / float64(total)})
	}
	return out
}

// SidecarUse sums the mesh sidecar containers of a pod; false when it has
// none with a cgroup reading.
func SidecarUse(p *Pod) (ContainerMemory, bool) {
	var m ContainerMemory
	ok := false
	for _, c := range p.Containers {
		if c.Sidecar && c.Memory != nil {
			m.WorkingSet += c.Memory.WorkingSet
			m.Anon += c.Memory.Anon
			m.File += c.Memory.File
			m.CPUSeconds += c.Memory.CPUSeconds
			ok = true
		}
	}
	return m, ok
}

// MeshSummary is the node's mesh memory, sidecar mode against ambient.
type MeshSummary struct {
	// SidecarPods are GPU pods with a sidecar; SidecarMemory sums those
	// sidecars' working sets.
	SidecarPods   int
	SidecarMemory uint64
	SidecarPerPod uint64
	// AmbientPods are GPU pods without a sidecar while ztunnel runs;
	// ZtunnelMemory is ztunnel's working set, which serves them all.
	AmbientPods   int
	ZtunnelMemory uint64
	ZtunnelPerPod uint64
}

// SummarizeMesh puts sidecar memory summed over the GPU pods next to
// ztunnel's, each per GPU pod it serves.
func SummarizeMesh(s *Snapshot) MeshSummary {
	var m MeshSummary
	var zt *Ztunnel
	if s.Mesh != nil {
		zt = s.Mesh.Ztunnel
	}
	present := zt != nil && zt.Present
	if present && zt.Memory != nil {
		m.ZtunnelMemory = zt.Memory.WorkingSet
	}
	if s.Attribution != nil {
		for i := range s.Attribution.Pods {
			p := &s.Attribution.Pods[i]
			if sc, ok := SidecarUse(p); ok {
				m.SidecarPods++
				m.SidecarMemory += sc.WorkingSet
			} else if present {
				m.AmbientPods++
			}
		}
	}
	if m.SidecarPods > 0 {
		m.SidecarPerPod = m.SidecarMemory / uint64(m.SidecarPods)
	}
	if m.AmbientPods > 0 {
		m.ZtunnelPerPod = m.ZtunnelMemory / uint64(m.AmbientPods)
	}
	return m
}
