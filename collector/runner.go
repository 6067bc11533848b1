package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/headroom-dev/headroom/snapshot"
)

// ErrStillRunning marks a source whose previous Collect or enrich step has
// not returned: it is not called again until it does, so a hung source
// cannot pile up goroutines.
var ErrStillRunning = errors.New("previous collect still running")

// Errors of a reading that breaks its entry's declarations.
var (
	errUndeclaredOwn    = errors.New("reading fills sections its table entry does not declare (Owns)")
	errUndeclaredEnrich = errors.New("reading has an enrich step its table entry does not declare (Reads, Writes)")
)

// Enabled is one source the runner drives.
type Enabled struct {
	Entry  Entry
	Source Source
	// InitErr, when set, means the factory failed: the source is reported
	// failed on every tick and never called.
	InitErr error
}

// Runner samples every enabled source in two phases (see the package
// documentation), each source and each enrich step with its own deadline.
type Runner struct {
	sources  []Enabled
	deadline time.Duration
	logger   *slog.Logger

	// tick serialises samples: an enrich step runs in the tick its
	// source read in.
	tick sync.Mutex

	mu       sync.Mutex
	inFlight map[string]bool
	running  sync.WaitGroup
}

// closeWait bounds how long Close waits for abandoned collects to return.
const closeWait = 5 * time.Second

// NewRunner returns a runner for sources (in table order), each read and
// each enrich step limited to deadline per tick.
func NewRunner(sources []Enabled, deadline time.Duration, logger *slog.Logger) *Runner {
	return &Runner{
		sources:  sources,
		deadline: deadline,
		logger:   logger,
		inFlight: make(map[string]bool),
	}
}

// Collect takes one sample into snap and returns every enabled source's
// status, in table order. Every source reads at once; the parts they own
// are filled in in table order; then each enrich step runs, in table
// order. It returns when every source and step has finished or hit its
// deadline.
func (r *Runner) Collect(ctx context.Context, snap *snapshot.Snapshot) []snapshot.SourceStatus {
	r.tick.Lock()
	defer r.tick.Unlock()
	readings, statuses := r.read(ctx)
	for i, e := range r.sources {
		if own := readings[i].Own; own != nil {
			if err := r.apply(e.Entry.Name, own, snap); err != nil {
				statuses[i].Success, statuses[i].Err = false, err.Error()
			}
		}
	}
	for i, e := range r.sources {
		step := readings[i].Enrich
		if step == nil || !statuses[i].Success {
			continue
		}
		took, err := r.enrich(ctx, e.Entry.Name, step, snap)
		statuses[i].Duration += took
		if err != nil {
			statuses[i].Success, statuses[i].Err = false, "enrich: "+err.Error()
		}
	}
	return statuses
}

// outcome is what one call on a source's goroutine came back with.
type outcome[T any] struct {
	v    T
	err  error
	took time.Duration
}

// read runs every source's Collect concurrently.
func (r *Runner) read(ctx context.Context) ([]Reading, []snapshot.SourceStatus) {
	readings := make([]Reading, len(r.sources))
	statuses := make([]snapshot.SourceStatus, len(r.sources))
	var wg sync.WaitGroup
	for i, e := range r.sources {
		statuses[i].Name = e.Entry.Name
		if e.InitErr != nil {
			statuses[i].Err = e.InitErr.Error()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := bounded(r, ctx, e.Entry.Name, e.Source.Collect)
			if o.err == nil {
				o.err = checkReading(&e.Entry, o.v)
			}
			statuses[i].Duration = o.took
			statuses[i].Success = o.err == nil
			if o.err != nil {
				statuses[i].Err = o.err.Error()
				return
			}
			readings[i] = o.v
		}()
	}
	wg.Wait()
	return readings, statuses
}

// checkReading refuses a reading its entry does not declare.
func checkReading(e *Entry, rd Reading) error {
	switch {
	case rd.Own != nil && len(e.Owns) == 0:
		return errUndeclaredOwn
	case rd.Enrich != nil && !e.enriches():
		return errUndeclaredEnrich
	}
	return nil
}

// enrich runs one enrich step with its own deadline and applies its part.
func (r *Runner) enrich(ctx context.Context, name string, step Enrich, snap *snapshot.Snapshot) (time.Duration, error) {
	o := bounded(r, ctx, name, func(ctx context.Context) (snapshot.Part, error) { return step(ctx, snap) })
	if o.err != nil {
		return o.took, o.err
	}
	if o.v == nil {
		return o.took, nil
	}
	return o.took, r.apply(name, o.v, snap)
}

// apply runs a part on snap, turning a panic into the source's failure.
func (r *Runner) apply(name string, p snapshot.Part, snap *snapshot.Snapshot) (err error) {
	defer func() {
		if v := recover(); v != nil {
			r.logger.Error("collector panicked filling the snapshot", "collector", name, "panic", v)
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	p(snap)
	return nil
}

// bounded runs fn with the runner's deadline on a goroutine of its own, so
// that a call that ignores its context is abandoned at the deadline rather
// than stalling the tick. A source with a call still running is not called
// again until it returns; a panic is the call's error.
func bounded[T any](r *Runner, ctx context.Context, name string, fn func(context.Context) (T, error)) outcome[T] {
	if !r.claim(name) {
		return outcome[T]{err: ErrStillRunning}
	}
	// Cancelling on return tells an abandoned call to give up.
	ctx, cancel := context.WithTimeout(ctx, r.deadline)
	defer cancel()
	start := time.Now()
	done := make(chan outcome[T], 1)
	r.running.Add(1)
	go func() {
		defer r.running.Done()
		defer r.release(name)
		defer func() {
			if p := recover(); p != nil {
				r.logger.Error("collector panicked", "collector", name, "panic", p)
				done <- outcome[T]{err: fmt.Errorf("panic: %v", p), took: time.Since(start)}
			}
		}()
		v, err := fn(ctx)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("deadline %s exceeded: %w", r.deadline, ctx.Err())
		}
		done <- outcome[T]{v: v, err: err, took: time.Since(start)}
	}()
	select {
	case o := <-done:
		return o
	case <-ctx.Done():
		return outcome[T]{err: fmt.Errorf("deadline %s exceeded: %w", r.deadline, ctx.Err()), took: time.Since(start)}
	}
}

func (r *Runner) claim(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inFlight[name] {
		return false
	}
	r.inFlight[name] = true
	return true
}

func (r *Runner) release(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inFlight, name)
}

// Close closes every source that holds resources (io.Closer), after waiting
// up to closeWait for calls abandoned at their deadline. A source still
// running then is left open rather than closed under its own feet.
func (r *Runner) Close() error {
	waited := make(chan struct{})
	go func() { r.running.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(closeWait):
	}
	var errs []error
	for _, e := range r.sources {
		if !r.claim(e.Entry.Name) {
			r.logger.Warn("collector still running at shutdown; not closing it", "collector", e.Entry.Name)
			continue
		}
		if c, ok := e.Source.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", e.Entry.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Sources returns the enabled sources, in table order.
func (r *Runner) Sources() []Enabled { return r.sources }
