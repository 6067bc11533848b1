package dcgm

import (
	"errors"
	"time"
)

// Errors a Library reports. Adapters translate DCGM's return codes into
// these so the source can tell an absent host engine from a failing one
// without cgo.
var (
	// ErrLibraryNotFound: libdcgm could not be loaded (or the agent was
	// built without cgo). A normal state on nodes without DCGM.
	ErrLibraryNotFound = errors.New("DCGM library not found")
	// ErrUnreachable: the library loaded but no host engine could be
	// started (embedded) or reached (standalone). Also a normal state.
	ErrUnreachable = errors.New("DCGM host engine unreachable")
	// ErrNotConnected: a call was made before a successful Connect (or after
	// Shutdown). Adapters refuse such calls instead of passing them to DCGM.
	ErrNotConnected = errors.New("DCGM not connected")
	// ErrConnectionLost: the host engine stopped answering
	// (DCGM_ST_CONNECTION_NOT_VALID); the source reconnects.
	ErrConnectionLost = errors.New("DCGM connection lost")
)

// Field is a DCGM field ID (DCGM_FI_*).
type Field uint16

// The profiling fields the source watches, as numbered in dcgm_fields.h.
const (
	FieldSMActive      Field = 1002 // DCGM_FI_PROF_SM_ACTIVE, ratio
	FieldSMOccupancy   Field = 1003 // DCGM_FI_PROF_SM_OCCUPANCY, ratio
	FieldTensorActive  Field = 1004 // DCGM_FI_PROF_PIPE_TENSOR_ACTIVE, ratio
	FieldDRAMActive    Field = 1005 // DCGM_FI_PROF_DRAM_ACTIVE, ratio
	FieldPCIeTxBytes   Field = 1009 // DCGM_FI_PROF_PCIE_TX_BYTES, bytes/s
	FieldPCIeRxBytes   Field = 1010 // DCGM_FI_PROF_PCIE_RX_BYTES, bytes/s
	FieldNVLinkTxBytes Field = 1011 // DCGM_FI_PROF_NVLINK_TX_BYTES, bytes/s
	FieldNVLinkRxBytes Field = 1012 // DCGM_FI_PROF_NVLINK_RX_BYTES, bytes/s
)

// ProfilingFields is the field group the source watches.
func ProfilingFields() []Field {
	return []Field{
		FieldSMActive, FieldSMOccupancy, FieldTensorActive, FieldDRAMActive,
		FieldPCIeTxBytes, FieldPCIeRxBytes, FieldNVLinkTxBytes, FieldNVLinkRxBytes,
	}
}

// GPU is one GPU as DCGM numbers it. DCGM's IDs need not equal NVML's
// indexes: the source matches GPUs by UUID.
type GPU struct {
	ID   uint
	UUID string
}

// Value is the latest reading of one field. Blank is set when DCGM has no
// value: the field is not supported, not yet sampled, or DCGM answered one
// of its blank sentinels.
type Value struct {
	Field Field
	Value float64
	Blank bool
}

// Library is the slice of DCGM the source uses. Package godcgm adapts
// go-dcgm to it; everything else builds without cgo.
//
// Connect must succeed before any other call; adapters refuse calls made
// earlier with ErrNotConnected, because go-dcgm's calls without a loaded
// libdcgm reach unresolved symbols.
type Library interface {
	// Connect loads libdcgm and starts an embedded host engine (address
	// empty) or connects to a standalone one (host:port, or a unix socket
	// path).
	Connect(address string) error
	// GPUs lists the GPUs DCGM supports.
	GPUs() ([]GPU, error)
	// Watch has DCGM sample fields on gpus every interval.
	Watch(gpus []uint, fields []Field, every time.Duration) error
	// Latest returns the latest value of each field on gpu, in fields'
	// order.
	Latest(gpu uint, fields []Field) ([]Value, error)
	// Shutdown drops the watches and the connection (stopping an embedded
	// host engine).
	Shutdown() error
}
