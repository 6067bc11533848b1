package nvml

import (
	"context"
	"errors"

	"github.com/headroom-dev/headroom/snapshot"
)

// Errors a Library reports. Adapters translate the NVML return codes into
// these so the source can decide what each means without cgo.
var (
	// ErrLibraryNotFound: libnvidia-ml could not be loaded.
	ErrLibraryNotFound = errors.New("NVML library not found")
	// ErrNotInitialized: a call was made before a successful Init (or after
	// Shutdown). Adapters refuse such calls instead of passing them to NVML.
	ErrNotInitialized = errors.New("NVML not initialized")
	// ErrNotSupported: the GPU or driver does not support the reading.
	ErrNotSupported = errors.New("not supported")
	// ErrGPULost: the GPU fell off the bus (NVML_ERROR_GPU_IS_LOST).
	ErrGPULost = errors.New("GPU is lost")
	// ErrNoData: the reading needs a second sample (GPM) or has no new
	// samples yet.
	ErrNoData = errors.New("no data yet")
)

// Library is the slice of NVML the source uses. Package gonvml adapts
// go-nvml (the real library, or NVIDIA's mock servers) to it; everything
// else builds without cgo.
type Library interface {
	Init() error
	Shutdown() error
	System() (snapshot.System, error)
	// Devices returns a handle per GPU, in index order.
	Devices() ([]Device, error)
	// WatchEvents delivers Xid events of devs until ctx ends, then closes
	// the channel.
	WatchEvents(ctx context.Context, devs []Device) (<-chan Event, error)
}

// Identity is what does not change while the GPU is attached.
type Identity struct {
	Index    int
	UUID     string
	Name     string
	PCIBusID string
	// Minor is the device's minor number (/dev/nvidia<minor>), the number
	// in the NVIDIA DRA driver's device names; -1 when unknown.
	Minor int
}

// GPM holds the GPM metrics between the previous and current samples, as
// 0–1 ratios.
type GPM struct {
	SMActive, SMOccupancy float64
}

// Device is one GPU handle. Each reading is one NVML call (or a small fixed
// group of them).
type Device interface {
	Identity() (Identity, error)
	Memory() (snapshot.Memory, error)
	Utilization() (snapshot.Utilization, error)
	TemperatureCelsius() (float64, error)
	PowerWatts() (float64, error)
	// EnergyJoules reads the energy the GPU used since the driver loaded
	// (Volta and later).
	EnergyJoules() (float64, error)
	// Clocks returns the current SM and memory clocks in Hz.
	Clocks() (sm, mem float64, err error)
	ThrottleReasons() (uint64, error)
	ECC() (snapshot.ECC, error)
	RemappedRows() (snapshot.RemappedRows, error)
	// Processes lists compute processes; MIGInstance is -1 off MIG.
	Processes() ([]snapshot.Process, error)
	// ProcessSMUtil returns each process's SM utilisation (0–1) over the
	// samples taken since the previous call.
	ProcessSMUtil() (map[uint32]float64, error)
	// GPM returns GPM metrics since the previous call; ErrNoData on the
	// first call, ErrNotSupported before Hopper.
	GPM() (GPM, error)
	// MIGDevices lists the MIG slices; nil when MIG is off or unsupported.
	MIGDevices() ([]snapshot.MIGDevice, error)
}

// Event is one NVML event.
type Event struct {
	// Index is the GPU index, or -1 when NVML did not say which GPU.
	Index int
	// Xid is the Xid error code.
	Xid uint64
}
