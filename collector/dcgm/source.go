// Package dcgm is the agent's DCGM source: when a DCGM host engine is there
// (embedded, or a standalone nv-hostengine), it watches the profiling
// fields (SM activity and occupancy, tensor and DRAM activity, PCIe and
// NVLink bytes) and, in its enrich step, lays them on the GPUs the nvml
// source found, matched by UUID.
//
// DCGM is optional: a node without libdcgm or without a reachable host
// engine is a normal state, not a failure. The source then logs once,
// reports itself down (headroom_dcgm_up 0) and succeeds with no readings,
// and NVML's GPM values stand; it retries connecting in the background
// every retry interval. Once connected, a failing read is a failure of the
// source, and a lost connection sends it back to reconnecting.
//
// The package itself needs no cgo: package godcgm adapts go-dcgm to
// Library. No library call is made before Connect succeeded.
package dcgm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/snapshot"
)

// Name is the source's name in the collector table.
const Name = "dcgm"

// state is where the source stands with the host engine.
type state int

const (
	stateDown       state = iota // not connected, no attempt running
	stateConnecting              // an attempt runs in the background
	stateConnected
)

// Source reads DCGM's profiling fields through a Library.
type Source struct {
	lib    Library
	opts   Options
	logger *slog.Logger
	ctx    context.Context
	now    func() time.Time
	fields []Field

	mu      sync.Mutex
	state   state
	tried   bool
	lastTry time.Time
	// quiet is set once the absence has been logged: later failed
	// attempts are not logged again until a connection succeeds.
	quiet  bool
	closed bool
	gpus   []GPU

	attempts sync.WaitGroup
}

// New returns a source over lib and starts the first connection attempt in
// the background; samples taken before it completes report DCGM down.
// Attempts stop when ctx ends.
func New(ctx context.Context, lib Library, o Options, logger *slog.Logger) *Source {
	return newSource(ctx, lib, o, logger, time.Now)
}

// newSource is New with a clock.
func newSource(ctx context.Context, lib Library, o Options, logger *slog.Logger, now func() time.Time) *Source {
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	if o.Update <= 0 {
		o.Update = DefaultUpdate
	}
	s := &Source{lib: lib, opts: o, logger: logger, ctx: ctx, now: now, fields: ProfilingFields()}
	s.mu.Lock()
	s.maybeConnectLocked()
	s.mu.Unlock()
	return s
}

// maybeConnectLocked starts a connection attempt unless one runs, the
// source is connected or closed, or the last attempt is more recent than
// the retry interval. s.mu must be held.
func (s *Source) maybeConnectLocked() {
	if s.state != stateDown || s.closed || s.ctx.Err() != nil {
		return
	}
	now := s.now()
	if s.tried && now.Sub(s.lastTry) < s.opts.Retry {
		return
	}
	s.tried, s.lastTry, s.state = true, now, stateConnecting
	s.attempts.Add(1)
	go s.connect()
}

// connect runs one attempt: it may block (starting an embedded host engine,
// or a connect timeout), which is why it runs off the sampling tick.
func (s *Source) connect() {
	defer s.attempts.Done()
	gpus, err := s.open()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		if err == nil {
			_ = s.lib.Shutdown()
		}
		s.state = stateDown
		return
	}
	if err != nil {
		s.state = stateDown
		if !s.quiet {
			s.logger.Info("DCGM unavailable: profiling fields are off and NVML's GPM values stand; retrying in the background",
				"err", err, "retry", s.opts.Retry)
			s.quiet = true
		} else {
			s.logger.Debug("DCGM still unavailable", "err", err)
		}
		return
	}
	s.state, s.gpus, s.quiet = stateConnected, gpus, false
	mode := "embedded"
	if s.opts.Address != "" {
		mode = s.opts.Address
	}
	s.logger.Info("DCGM connected", "host_engine", mode, "gpus", len(gpus))
}

// open connects, lists the GPUs and watches the fields. Nothing but Connect
// is called unless Connect succeeded.
func (s *Source) open() ([]GPU, error) {
	if err := s.lib.Connect(s.opts.Address); err != nil {
		return nil, fmt.Errorf("dcgm connect: %w", err)
	}
	gpus, err := s.lib.GPUs()
	if err != nil {
		_ = s.lib.Shutdown()
		return nil, fmt.Errorf("dcgm gpus: %w", err)
	}
	ids := make([]uint, len(gpus))
	for i, g := range gpus {
		ids[i] = g.ID
	}
	if err := s.lib.Watch(ids, s.fields, s.opts.Update); err != nil {
		_ = s.lib.Shutdown()
		return nil, fmt.Errorf("dcgm watch: %w", err)
	}
	return gpus, nil
}

// Entry is the dcgm collector's row of the collector table, reading lib
// (go-dcgm through godcgm, or a fake) with options o.
func Entry(lib Library, o Options) collector.Entry {
	opts := &o
	return collector.Entry{
		// Default on: without a host engine it reports down and succeeds.
		Name: Name, DefaultOn: true,
		Help:    "DCGM profiling fields (SM, tensor and DRAM activity, PCIe and NVLink bytes) when a host engine is there; NVML's GPM values stand otherwise",
		Options: opts,
		Reads:   []snapshot.Section{snapshot.SectionGPUs},
		Writes:  []snapshot.Section{snapshot.SectionProfiling},
		New: func(env collector.Env) (collector.Source, error) {
			return New(env.Ctx, lib, *opts, env.Logger), nil
		},
	}
}

// Collect reads the latest profiling values of every GPU DCGM knows; its
// enrich step lays them on NVML's GPUs. While DCGM is unavailable it
// succeeds with the source marked down and no readings.
func (s *Source) Collect(ctx context.Context) (collector.Reading, error) {
	s.mu.Lock()
	if s.state != stateConnected {
		s.maybeConnectLocked()
		s.mu.Unlock()
		return collector.Reading{Enrich: enrich(false, nil)}, nil
	}
	gpus := s.gpus
	s.mu.Unlock()

	prof, err := s.read(ctx, gpus)
	if errors.Is(err, ErrConnectionLost) {
		s.disconnect()
		s.logger.Warn("DCGM host engine connection lost; reconnecting", "err", err)
	}
	if err != nil {
		return collector.Reading{}, err
	}
	return collector.Reading{Enrich: enrich(true, prof)}, nil
}

// read takes the latest values of every GPU, keyed by UUID.
func (s *Source) read(ctx context.Context, gpus []GPU) (map[string]*snapshot.Profiling, error) {
	out := make(map[string]*snapshot.Profiling, len(gpus))
	for _, g := range gpus {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		vals, err := s.lib.Latest(g.ID, s.fields)
		if err != nil {
			return nil, fmt.Errorf("dcgm read gpu %d: %w", g.ID, err)
		}
		out[g.UUID] = profiling(vals)
	}
	return out, nil
}

// disconnect drops a lost connection; the next Collect reconnects (once
// the retry interval since the last attempt has passed).
func (s *Source) disconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.lib.Shutdown()
	s.state, s.gpus, s.quiet = stateDown, nil, true
}

// Close waits for a running connection attempt and shuts DCGM down.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.attempts.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateConnected {
		return nil
	}
	s.state = stateDown
	if err := s.lib.Shutdown(); err != nil {
		return fmt.Errorf("dcgm shutdown: %w", err)
	}
	return nil
}

// enrich is the enrich step of one reading: it marks DCGM up or down and
// lays each profile on NVML's GPU of the same UUID. GPUs DCGM does not
// know, and lost ones, keep Profiling nil.
func enrich(up bool, prof map[string]*snapshot.Profiling) collector.Enrich {
	return func(_ context.Context, snap *snapshot.Snapshot) (snapshot.Part, error) {
		on := make(map[int]*snapshot.Profiling, len(prof)) // GPU slice index → profile
		for i := range snap.GPUs {
			g := &snap.GPUs[i]
			if p, ok := prof[g.UUID]; ok && !g.Lost {
				on[i] = p
			}
		}
		return func(snap *snapshot.Snapshot) {
			snap.System.DCGM = &snapshot.DCGM{Up: up}
			for i, p := range on {
				snap.GPUs[i].Profiling = p
			}
		}, nil
	}
}

// profiling maps field values onto a Profiling; blank fields stay nil.
func profiling(vals []Value) *snapshot.Profiling {
	p := &snapshot.Profiling{}
	for _, v := range vals {
		if v.Blank {
			continue
		}
		x := v.Value
		switch v.Field {
		case FieldSMActive:
			p.SMActive = &x
		case FieldSMOccupancy:
			p.SMOccupancy = &x
		case FieldTensorActive:
			p.TensorActive = &x
		case FieldDRAMActive:
			p.DRAMActive = &x
		case FieldPCIeTxBytes:
			p.PCIeTxBytes = &x
		case FieldPCIeRxBytes:
			p.PCIeRxBytes = &x
		case FieldNVLinkTxBytes:
			p.NVLinkTxBytes = &x
		case FieldNVLinkRxBytes:
			p.NVLinkRxBytes = &x
		}
	}
	return p
}
