//go:build cgo

// Package gonvml adapts github.com/NVIDIA/go-nvml to the nvml source's
// Library interface. The same adapter serves the real libnvidia-ml (New) and
// NVIDIA's mock servers (FromInterface), so tests drive the production code.
//
// go-nvml needs cgo; without it New reports that NVML is unavailable.
//
// Every call is guarded: after a failed Init, or after Shutdown, the adapter
// answers ErrNotInitialized itself, because calling into go-nvml without a
// loaded library terminates the process.
package gonvml

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/snapshot"
)

// Library is a guarded go-nvml interface.
type Library struct {
	lib   gonvml.Interface
	ready atomic.Bool
}

var _ nvml.Library = (*Library)(nil)

// New returns the adapter over the system's libnvidia-ml, loaded at Init.
func New() *Library { return FromInterface(gonvml.New()) }

// FromInterface adapts any go-nvml implementation, such as a mock server.
func FromInterface(lib gonvml.Interface) *Library { return &Library{lib: lib} }

// Init loads and initialises NVML.
func (l *Library) Init() error {
	if l.ready.Load() {
		return nil
	}
	if err := toErr(l.lib.Init()); err != nil {
		return err
	}
	l.ready.Store(true)
	return nil
}

// Shutdown releases NVML; later calls answer ErrNotInitialized.
func (l *Library) Shutdown() error {
	if !l.ready.Swap(false) {
		return nil
	}
	return toErr(l.lib.Shutdown())
}

func (l *Library) guard() error {
	if !l.ready.Load() {
		return nvml.ErrNotInitialized
	}
	return nil
}

// System reads driver, NVML and CUDA versions.
func (l *Library) System() (snapshot.System, error) {
	if err := l.guard(); err != nil {
		return snapshot.System{}, err
	}
	var s snapshot.System
	var ret gonvml.Return
	if s.DriverVersion, ret = l.lib.SystemGetDriverVersion(); ret != gonvml.SUCCESS {
		return s, fmt.Errorf("driver version: %w", toErr(ret))
	}
	// The NVML and CUDA versions are informative; a failure leaves them empty.
	s.NVMLVersion, _ = l.lib.SystemGetNVMLVersion()
	s.CUDADriverVersion, _ = l.lib.SystemGetCudaDriverVersion()
	return s, nil
}

// Devices returns a handle per GPU in index order.
func (l *Library) Devices() ([]nvml.Device, error) {
	if err := l.guard(); err != nil {
		return nil, err
	}
	n, ret := l.lib.DeviceGetCount()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("device count: %w", toErr(ret))
	}
	devs := make([]nvml.Device, 0, n)
	for i := range n {
		h, ret := l.lib.DeviceGetHandleByIndex(i)
		if ret != gonvml.SUCCESS {
			// A GPU lost before start has no handle; keep its index.
			devs = append(devs, &lostDevice{index: i, err: toErr(ret)})
			continue
		}
		devs = append(devs, &Device{l: l, h: h, index: i})
	}
	return devs, nil
}

// WatchEvents registers for Xid events on every device that supports them.
func (l *Library) WatchEvents(ctx context.Context, devs []nvml.Device) (<-chan nvml.Event, error) {
	if err := l.guard(); err != nil {
		return nil, err
	}
	set, ret := l.lib.EventSetCreate()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("event set: %w", toErr(ret))
	}
	byHandle := make(map[gonvml.Device]int)
	for _, d := range devs {
		dev, ok := d.(*Device)
		if !ok {
			continue
		}
		if err := registerXid(dev.h, set); err != nil {
			continue
		}
		byHandle[dev.h] = dev.index
	}
	if len(byHandle) == 0 {
		_ = set.Free()
		return nil, fmt.Errorf("no GPU supports Xid events: %w", nvml.ErrNotSupported)
	}
	ch := make(chan nvml.Event, 64)
	go l.waitEvents(ctx, set, byHandle, ch)
	return ch, nil
}

func registerXid(h gonvml.Device, set gonvml.EventSet) error {
	types, ret := h.GetSupportedEventTypes()
	if ret != gonvml.SUCCESS {
		return toErr(ret)
	}
	if types&gonvml.EventTypeXidCriticalError == 0 {
		return nvml.ErrNotSupported
	}
	return toErr(h.RegisterEvents(gonvml.EventTypeXidCriticalError, set))
}

// toErr maps an NVML return code to an error wrapping the source's
// sentinels; SUCCESS is nil.
func toErr(r gonvml.Return) error {
	switch r {
	case gonvml.SUCCESS:
		return nil
	case gonvml.ERROR_LIBRARY_NOT_FOUND:
		return fmt.Errorf("%w: %s", nvml.ErrLibraryNotFound, r.Error())
	case gonvml.ERROR_NOT_SUPPORTED, gonvml.ERROR_FUNCTION_NOT_FOUND:
		return fmt.Errorf("%w: %s", nvml.ErrNotSupported, r.Error())
	case gonvml.ERROR_GPU_IS_LOST:
		return fmt.Errorf("%w: %s", nvml.ErrGPULost, r.Error())
	case gonvml.ERROR_UNINITIALIZED:
		return fmt.Errorf("%w: %s", nvml.ErrNotInitialized, r.Error())
	case gonvml.ERROR_NOT_FOUND:
		return fmt.Errorf("%w: %s", nvml.ErrNoData, r.Error())
	default:
		return errors.New(r.Error())
	}
}
