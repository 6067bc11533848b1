package snapshot

// System is driver-wide information.
type System struct {
	DriverVersion string
	NVMLVersion   string
	// CUDADriverVersion is the CUDA version the driver supports, e.g. 12040.
	CUDADriverVersion int
	// DCGM is the DCGM host engine's state, set by the dcgm source (which
	// runs after nvml); nil when that collector is off.
	DCGM *DCGM
}

// GPU is the sampled state of one physical GPU.
//
// Optional readings are pointers: nil means the GPU or driver does not
// support the reading (or it failed this tick), which the exporter renders
// as an absent series rather than a misleading zero.
type GPU struct {
	Index    int
	UUID     string
	Name     string
	PCIBusID string
	// Minor is the device's minor number (/dev/nvidia<minor>); nil when
	// unknown. The NVIDIA DRA driver names GPUs by it (gpu-<minor>).
	Minor *int

	// Lost is set when the GPU answered ERROR_GPU_IS_LOST (fell off the bus).
	// A lost GPU keeps its identity fields; its readings are absent.
	Lost bool

	Memory      *Memory
	Utilization *Utilization
	// SMActive and SMOccupancy are 0–1 ratios from GPM (Hopper and later).
	SMActive    *float64
	SMOccupancy *float64
	// Profiling holds DCGM's profiling fields; nil without a DCGM host
	// engine. When present, its SM activity supersedes GPM's.
	Profiling *Profiling

	TemperatureCelsius *float64
	PowerWatts         *float64
	// EnergyJoules is NVML's total energy counter: joules the GPU used
	// since the driver loaded (Volta and later).
	EnergyJoules  *float64
	SMClockHz     *float64
	MemoryClockHz *float64
	// ThrottleReasons is the NVML clocks-event bit mask.
	ThrottleReasons *uint64

	ECC          *ECC
	RemappedRows *RemappedRows

	// XidErrors counts Xid events by code since the agent started.
	XidErrors map[uint64]uint64

	Processes []Process
	MIG       []MIGDevice
}

// Memory is framebuffer memory in bytes (NVML memory info v2).
type Memory struct {
	Total, Used, Free, Reserved uint64
}

// Utilization holds NVML's sampled busy ratios, 0–1.
type Utilization struct {
	GPU, Memory float64
}

// ECC counts memory errors. Corrected and Uncorrected are volatile: since
// the driver loaded or the GPU was last reset.
type ECC struct {
	Corrected, Uncorrected uint64
	// Aggregate counts over the GPU's life (kept in the InfoROM across
	// reloads and resets); nil when the GPU does not keep them.
	Aggregate *ECCCounts
}

// ECCCounts is a pair of corrected and uncorrected error counts.
type ECCCounts struct {
	Corrected, Uncorrected uint64
}

// RemappedRows is the row-remapping state of HBM GPUs (Ampere and later).
type RemappedRows struct {
	Correctable, Uncorrectable int
	Pending, Failed            bool
}

// Process is one compute process holding a CUDA context on a GPU.
type Process struct {
	PID        uint32
	UsedMemory uint64
	// SMUtil is the process's recent SM utilisation, 0–1, when known.
	SMUtil *float64
	// MIGInstance is the GPU-instance ID for processes on a MIG slice, or -1.
	MIGInstance int
	// Namespace, Pod and Container name the process's container; empty
	// when unattributed.
	Namespace, Pod, Container string
}

// MIGDevice is one MIG slice of a GPU.
type MIGDevice struct {
	UUID              string
	GPUInstanceID     int
	ComputeInstanceID int
	Name              string
	Memory            *Memory
	// SMActive is the slice's GPM SM activity between samples (0–1), of
	// its own SMs; nil before Hopper or on the first sample.
	SMActive *float64
}

// Profiling is DCGM's profiling group for one GPU. Ratios are 0–1 and
// rates are bytes per second; nil means the field is not supported.
type Profiling struct {
	SMActive, SMOccupancy, TensorActive, DRAMActive *float64
	PCIeTxBytes, PCIeRxBytes                        *float64
	NVLinkTxBytes, NVLinkRxBytes                    *float64
}
