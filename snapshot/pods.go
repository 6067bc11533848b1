package snapshot

import "time"

// Attribution says which pod and container owns each GPU and each byte of
// VRAM on the node, and what the pods' containers use of host memory and
// CPU. It is filled by the pods collector from cached kubelet and runtime
// views joined with this tick's NVML processes.
type Attribution struct {
	// Pods are the GPU pods: pods holding a GPU device or running a GPU
	// process. Sorted by namespace and name.
	Pods []Pod
	// Owners lists, per GPU UUID, the containers the kubelet assigned it
	// to; several for a time-sliced or MPS-shared GPU.
	Owners map[string][]Owner
	// MeshVRAM is VRAM held by processes in sidecar (mesh proxy)
	// containers: measured, expected 0.
	MeshVRAM uint64
	// UnattributedProcesses counts GPU processes whose container could not
	// be told (not in a Kubernetes container, or not in the runtime's view).
	UnattributedProcesses int
	// Kubelet and Runtime say how fresh each view is.
	Kubelet, Runtime SourceFreshness
}

// Owner is one container a GPU is assigned to.
type Owner struct {
	Namespace, Pod, Container string
}

// SourceFreshness is the health of one cached view.
type SourceFreshness struct {
	// LastSuccess is when the view was last refreshed (zero: never).
	LastSuccess time.Time
	// StaleSince is when refreshing started failing (zero: fresh).
	StaleSince time.Time
}

// Pod is one GPU pod.
type Pod struct {
	UID, Namespace, Name, IP string
	// Port is the serving port when known (standalone endpoints); 0 means
	// the port comes from the InferencePool.
	Port int
	// GPUs are the UUIDs of the GPUs assigned to the pod or used by its
	// processes, sorted.
	GPUs []string
	// MIG are the UUIDs of the MIG slices the pod holds (assigned to it or
	// running its processes), sorted; their GPUs are in GPUs.
	MIG        []string
	Containers []Container
	// Engine, MetricsPort and MetricsPath say where the pod's model server
	// serves its metrics: the engine-type label and the metrics-port and
	// prometheus.io/path annotations, empty or 0 when unset.
	Engine      string
	MetricsPort int
	MetricsPath string
	// ModelServer is the pod's model-server reading; nil when the pod has
	// none or the model-server source is off.
	ModelServer *ModelServer
}

// Container is one container of a GPU pod.
type Container struct {
	Name, ID string
	// Sidecar is true for mesh proxy containers (by name).
	Sidecar bool
	// Memory is the container's cgroup v2 use; nil when unreadable.
	Memory *ContainerMemory
	// GPUs holds, per GPU UUID, the VRAM and CUDA contexts of the
	// container's processes there.
	GPUs map[string]GPUUse
}

// ContainerMemory is a container's cgroup v2 memory and CPU.
type ContainerMemory struct {
	WorkingSet, Anon, File uint64
	CPUSeconds             float64
}

// GPUUse is what one container holds on one GPU.
type GPUUse struct {
	Memory   uint64
	Contexts int
}
