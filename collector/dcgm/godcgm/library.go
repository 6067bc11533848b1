//go:build cgo

// Package godcgm adapts github.com/NVIDIA/go-dcgm to the dcgm source's
// Library interface. It is the only package that imports go-dcgm.
//
// go-dcgm needs cgo and dlopens libdcgm.so.4 in Init; without the library
// Init fails before any DCGM symbol is called. Every other call is guarded:
// before a successful Connect, or after Shutdown, the adapter answers
// ErrNotConnected itself, because go-dcgm's calls without a loaded
// libdcgm reach unresolved symbols. go-dcgm keeps one connection per
// process, so use one Library per process.
//
// This adapter compiles and its connect-failure path is tested; it has not
// been run against a real host engine.
package godcgm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	godcgm "github.com/NVIDIA/go-dcgm/pkg/dcgm"

	"github.com/headroom-dev/headroom/collector/dcgm"
)

// Library is a guarded go-dcgm connection.
type Library struct {
	mu        sync.Mutex
	connected bool
	watching  bool
	group     godcgm.GroupHandle
	fields    godcgm.FieldHandle
}

var _ dcgm.Library = (*Library)(nil)

// groupSeq keeps group names unique across reconnects to one host engine.
var groupSeq atomic.Uint64

// New returns an adapter; nothing is loaded until Connect.
func New() *Library { return &Library{} }

// Connect loads libdcgm and starts an embedded host engine (address empty)
// or connects to a standalone one.
func (l *Library) Connect(address string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connected {
		return nil
	}
	var err error
	switch path, sock := dcgm.SocketPath(address); {
	case address == "":
		_, err = godcgm.Init(godcgm.Embedded)
	case sock:
		_, err = godcgm.Init(godcgm.Standalone, path, "1")
	default:
		_, err = godcgm.Init(godcgm.Standalone, address, "0")
	}
	if err != nil {
		// go-dcgm reports a failed dlopen as "libdcgm.so.4 not found".
		if strings.Contains(err.Error(), "libdcgm") && strings.Contains(err.Error(), "not found") {
			return fmt.Errorf("%w: %w", dcgm.ErrLibraryNotFound, err)
		}
		return fmt.Errorf("%w: %w", dcgm.ErrUnreachable, err)
	}
	l.connected = true
	return nil
}

// GPUs lists the GPUs DCGM supports, with their UUIDs.
func (l *Library) GPUs() ([]dcgm.GPU, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.connected {
		return nil, dcgm.ErrNotConnected
	}
	ids, err := godcgm.GetSupportedDevices()
	if err != nil {
		return nil, fmt.Errorf("supported devices: %w", toErr(err))
	}
	out := make([]dcgm.GPU, 0, len(ids))
	for _, id := range ids {
		info, err := godcgm.GetDeviceInfo(id)
		if err != nil {
			return nil, fmt.Errorf("device %d info: %w", id, toErr(err))
		}
		out = append(out, dcgm.GPU{ID: id, UUID: info.UUID})
	}
	return out, nil
}

// Watch creates a GPU group of gpus and a field group of fields, and has
// DCGM sample them every interval, keeping two samples.
func (l *Library) Watch(gpus []uint, fields []dcgm.Field, every time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.connected {
		return dcgm.ErrNotConnected
	}
	if len(gpus) == 0 || len(fields) == 0 {
		return nil
	}
	l.unwatchLocked()
	name := fmt.Sprintf("headroom-%d-%d", os.Getpid(), groupSeq.Add(1))
	group, err := godcgm.CreateGroup(name)
	if err != nil {
		return fmt.Errorf("create group: %w", toErr(err))
	}
	for _, id := range gpus {
		if err := godcgm.AddToGroup(group, id); err != nil {
			_ = godcgm.DestroyGroup(group)
			return fmt.Errorf("add gpu %d to group: %w", id, toErr(err))
		}
	}
	fg, err := godcgm.FieldGroupCreate(name, shorts(fields))
	if err != nil {
		_ = godcgm.DestroyGroup(group)
		return fmt.Errorf("create field group: %w", toErr(err))
	}
	if err := godcgm.WatchFieldsWithGroupEx(fg, group, every.Microseconds(), 0, 2); err != nil {
		_ = godcgm.FieldGroupDestroy(fg)
		_ = godcgm.DestroyGroup(group)
		return fmt.Errorf("watch fields: %w", toErr(err))
	}
	l.group, l.fields, l.watching = group, fg, true
	return nil
}

// Latest reads the latest value of each field on gpu.
func (l *Library) Latest(gpu uint, fields []dcgm.Field) ([]dcgm.Value, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.connected {
		return nil, dcgm.ErrNotConnected
	}
	if len(fields) == 0 {
		return nil, nil
	}
	vals, err := godcgm.EntityGetLatestValues(godcgm.FE_GPU, gpu, shorts(fields))
	if err != nil {
		return nil, toErr(err)
	}
	out := make([]dcgm.Value, len(vals))
	for i, v := range vals {
		out[i] = value(v)
	}
	return out, nil
}

// Shutdown drops the watches and the connection; later calls answer
// ErrNotConnected.
func (l *Library) Shutdown() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.connected {
		return nil
	}
	l.unwatchLocked()
	l.connected = false
	return godcgm.Shutdown()
}

// unwatchLocked drops the groups of an earlier Watch, best effort (a lost
// host engine cannot answer).
func (l *Library) unwatchLocked() {
	if !l.watching {
		return
	}
	_ = godcgm.UnwatchFields(l.fields, l.group)
	_ = godcgm.FieldGroupDestroy(l.fields)
	_ = godcgm.DestroyGroup(l.group)
	l.watching = false
}

func shorts(fields []dcgm.Field) []godcgm.Short {
	out := make([]godcgm.Short, len(fields))
	for i, f := range fields {
		out[i] = godcgm.Short(f)
	}
	return out
}

// value converts one field value; a non-OK status or a blank sentinel is
// Blank.
func value(v godcgm.FieldValue_v1) dcgm.Value {
	out := dcgm.Value{Field: dcgm.Field(v.FieldID), Blank: true}
	if v.Status != godcgm.DCGM_ST_OK {
		return out
	}
	switch v.FieldType {
	case godcgm.DCGM_FT_DOUBLE:
		if f := v.Float64(); f < godcgm.DCGM_FT_FP64_BLANK {
			out.Value, out.Blank = f, false
		}
	case godcgm.DCGM_FT_INT64:
		if n := v.Int64(); !godcgm.IsInt64Blank(n) {
			out.Value, out.Blank = float64(n), false
		}
	}
	return out
}

// toErr marks a lost host engine connection with dcgm.ErrConnectionLost.
func toErr(err error) error {
	var de *godcgm.Error
	if errors.As(err, &de) && int(de.Code) == godcgm.DCGM_ST_CONNECTION_NOT_VALID {
		return fmt.Errorf("%w: %w", dcgm.ErrConnectionLost, err)
	}
	return err
}
