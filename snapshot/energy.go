package snapshot

// Energy is the node's GPU energy split between its pods, as estimated by
// the energy collector's enrich step. Each GPU's measured energy since the
// previous sample (NVML's counter) is attributed to the processes on it by
// their share of the interval's SM time (NVML per-process SM utilisation);
// the rest is kept apart, never spread over the pods: idle (no process had
// the SMs busy), unowned (processes in no pod) or unknown (the interval had
// no per-process utilisation to split by). Counters are joules since the
// agent started.
type Energy struct {
	// GPUs holds each GPU's energy that no pod is charged with, by UUID.
	GPUs map[string]GPUEnergy
	// Containers holds the estimated energy each container used on each
	// GPU, sorted by namespace, pod, container and GPU.
	Containers []ContainerEnergy
	// PerOutputToken holds, per pod whose model server counts generated
	// tokens, the estimated joules per output token over the last sample
	// interval in which it generated any.
	PerOutputToken []PodEnergyPerToken
}

// GPUEnergy is one GPU's energy that no pod is charged with, in joules.
type GPUEnergy struct {
	Idle, Unowned, Unknown float64
}

// ContainerEnergy is the estimated energy one container used on one GPU.
type ContainerEnergy struct {
	Namespace, Pod, Container string
	GPU                       string
	Joules                    float64
}

// PodEnergyPerToken is one pod's estimated energy per output token.
type PodEnergyPerToken struct {
	Namespace, Pod string
	// Engine is the model server's engine.
	Engine string
	// Joules per output token.
	Joules float64
}
