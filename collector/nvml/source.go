// Package nvml is the agent's GPU source: it samples every GPU through a
// small Library interface (memory, utilisation, GPM SM activity, thermals,
// clocks, ECC, processes, MIG slices) and counts Xid events.
//
// The package itself needs no cgo: package gonvml adapts go-nvml to Library,
// for the real driver and for NVIDIA's mock servers alike.
//
// Two rules keep the agent alive on nodes without a working driver: no call
// is made unless Init succeeded, and a GPU that falls off the bus is
// reported lost while the others keep reporting.
package nvml

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/snapshot"
)

// Name is the source's name in the collector table.
const Name = "nvml"

// DefaultInitRetry is how often a failed Init is retried.
const DefaultInitRetry = 30 * time.Second

// Source samples GPUs through a Library.
type Source struct {
	lib       Library
	logger    *slog.Logger
	ctx       context.Context
	initRetry time.Duration
	now       func() time.Time

	// Fields below are used only from Collect (never concurrent with itself)
	// and Close.
	initialized bool
	lastInitTry time.Time
	initFailed  bool
	system      snapshot.System
	gpus        []*gpuState
	stopEvents  context.CancelFunc

	xids *xidCounter
}

// gpuState is what the source remembers about one GPU between ticks.
type gpuState struct {
	dev Device
	id  Identity
	// unsupported records readings that answered ErrNotSupported: they are
	// logged once and not asked again.
	unsupported map[string]bool
	wasLost     bool
}

// New returns a source over lib and tries Init at once. A failed Init is
// logged once; the source then reports failure and retries Init every
// DefaultInitRetry, making no other NVML call meanwhile. Background event
// watching ends with ctx.
func New(ctx context.Context, lib Library, logger *slog.Logger) *Source {
	s := &Source{
		lib:       lib,
		logger:    logger,
		ctx:       ctx,
		initRetry: DefaultInitRetry,
		now:       time.Now,
		xids:      newXIDCounter(),
	}
	_ = s.ensureInit()
	return s
}

// ensureInit initialises NVML and discovers GPUs, at most once per retry
// interval while it keeps failing.
func (s *Source) ensureInit() error {
	if s.initialized {
		return nil
	}
	now := s.now()
	if !s.lastInitTry.IsZero() && now.Sub(s.lastInitTry) < s.initRetry {
		return fmt.Errorf("%w (retrying in %s)", ErrNotInitialized, s.initRetry-now.Sub(s.lastInitTry))
	}
	s.lastInitTry = now
	if err := s.lib.Init(); err != nil {
		if !s.initFailed {
			s.logger.Error("NVML unavailable: GPU metrics are off until it loads; is the NVIDIA driver installed and libnvidia-ml mounted into the agent?",
				"err", err, "retry", s.initRetry)
		}
		s.initFailed = true
		return fmt.Errorf("nvml init: %w", err)
	}
	if err := s.discover(); err != nil {
		_ = s.lib.Shutdown()
		return err
	}
	s.initialized = true
	if s.initFailed {
		s.logger.Info("NVML loaded after earlier failure")
	}
	s.initFailed = false
	return nil
}

// discover reads the driver version and every GPU's identity, and starts the
// event watcher.
func (s *Source) discover() error {
	sys, err := s.lib.System()
	if err != nil {
		return fmt.Errorf("nvml system info: %w", err)
	}
	devs, err := s.lib.Devices()
	if err != nil {
		return fmt.Errorf("nvml devices: %w", err)
	}
	gpus := make([]*gpuState, 0, len(devs))
	for i, d := range devs {
		id, err := d.Identity()
		if err != nil {
			// Keep the slot: a GPU lost at start still deserves a series.
			s.logger.Warn("reading GPU identity", "gpu", i, "err", err)
			id = Identity{Index: i, Minor: -1}
		}
		gpus = append(gpus, &gpuState{dev: d, id: id, unsupported: map[string]bool{}})
	}
	s.system, s.gpus = sys, gpus
	s.logger.Info("NVML initialised", "driver", sys.DriverVersion, "gpus", len(gpus))

	ctx, cancel := context.WithCancel(s.ctx)
	events, err := s.lib.WatchEvents(ctx, devs)
	if err != nil {
		cancel()
		s.logger.Warn("Xid events unavailable", "err", err)
		return nil
	}
	s.stopEvents = cancel
	go s.xids.consume(events, s.logger)
	return nil
}

// Entry is the nvml collector's row of the collector table: it samples
// the GPUs of lib (the driver through gonvml, or simulated ones).
func Entry(lib Library) collector.Entry {
	return collector.Entry{
		Name: Name, DefaultOn: true,
		Help: "GPUs through NVML: memory, utilisation, SM activity, thermals, ECC, processes, MIG, Xid",
		Owns: []snapshot.Section{snapshot.SectionGPUs},
		New: func(env collector.Env) (collector.Source, error) {
			if lib == nil {
				return nil, errors.New("no GPU backend configured")
			}
			return New(env.Ctx, lib, env.Logger), nil
		},
	}
}

// Collect samples every GPU. It owns the GPUs and the driver versions.
func (s *Source) Collect(ctx context.Context) (collector.Reading, error) {
	if err := s.ensureInit(); err != nil {
		return collector.Reading{}, err
	}
	gpus := make([]snapshot.GPU, 0, len(s.gpus))
	for _, g := range s.gpus {
		if err := ctx.Err(); err != nil {
			return collector.Reading{}, err
		}
		gpus = append(gpus, s.sampleGPU(g))
	}
	sys := s.system
	return collector.Reading{Own: func(snap *snapshot.Snapshot) {
		snap.System.DriverVersion, snap.System.NVMLVersion, snap.System.CUDADriverVersion = sys.DriverVersion, sys.NVMLVersion, sys.CUDADriverVersion
		snap.GPUs = gpus
	}}, nil
}

// Close stops the event watcher and shuts NVML down.
func (s *Source) Close() error {
	if s.stopEvents != nil {
		s.stopEvents()
	}
	if !s.initialized {
		return nil
	}
	s.initialized = false
	return s.lib.Shutdown()
}

// read runs one reading of g. It returns false when the reading gave no
// value; a lost GPU is recorded in lost.
func read[T any](s *Source, g *gpuState, lost *bool, feature string, fn func() (T, error)) (T, bool) {
	var zero T
	if *lost || g.unsupported[feature] {
		return zero, false
	}
	v, err := fn()
	switch {
	case err == nil:
		return v, true
	case errors.Is(err, ErrGPULost):
		*lost = true
	case errors.Is(err, ErrNotSupported):
		g.unsupported[feature] = true
		s.logger.Info("reading not supported on this GPU; not asking again", "gpu", g.id.Index, "uuid", g.id.UUID, "reading", feature)
	case errors.Is(err, ErrNoData):
	default:
		s.logger.Debug("GPU reading failed", "gpu", g.id.Index, "reading", feature, "err", err)
	}
	return zero, false
}

func ptr[T any](v T, ok bool) *T {
	if !ok {
		return nil
	}
	return &v
}
