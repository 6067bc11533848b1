package telemetryv1

// Limits of one NodeReport, the contract between the two ends: the agent
// never builds a report beyond them (it caps the lists and counts what it
// left out), and the picker refuses a report, or drops one pod section,
// that goes past them. docs/telemetry.md lists them.
const (
	// MaxNameBytes bounds node, pod, namespace and GPU UUID strings (a
	// DNS subdomain's length).
	MaxNameBytes = 253
	// MaxGPUs bounds a report's GPUs.
	MaxGPUs = 64
	// MaxPods bounds a report's pods, and its mesh section's pods.
	MaxPods = 1024
	// MaxProcessesPerGPU bounds one GPU's process list; the agent keeps
	// the processes that hold the most VRAM.
	MaxProcessesPerGPU = 4096
	// MaxXidCodesPerGPU bounds one GPU's Xid entries (one per code; Xid
	// codes in use today are below 200).
	MaxXidCodesPerGPU = 256
	// MaxGPUsPerPod bounds the GPU UUIDs of one pod, and its MIG UUIDs.
	MaxGPUsPerPod = 64
	// MaxMIGPerGPU bounds one GPU's MIG slices (NVML has 7 slots today).
	MaxMIGPerGPU = 16
	// MaxLoRAAdapters bounds each of a model server's LoRA lists (running,
	// waiting); the agent keeps the first ones in the server's order.
	MaxLoRAAdapters = 256
	// MaxLoRANameBytes bounds one adapter name; the agent drops longer
	// names.
	MaxLoRANameBytes = 256
)
