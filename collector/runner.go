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

// ErrStillRunning marks a source whose previous Collect has not returned:
// it is not called again until it does, so a hung source cannot pile up
// goroutines.
var ErrStillRunning = errors.New("previous collect still running")

// Enabled is one source the runner drives.
type Enabled struct {
	Name   string
	Source Source
	// InitErr, when set, means the factory failed: the source is reported
	// failed on every tick and never called.
	InitErr error
}

// Runner collects every enabled source with its own deadline.
type Runner struct {
	sources  []Enabled
	deadline time.Duration
	logger   *slog.Logger

	mu       sync.Mutex
	inFlight map[string]bool
	running  sync.WaitGroup
}

// closeWait bounds how long Close waits for abandoned collects to return.
const closeWait = 5 * time.Second

// NewRunner returns a runner for sources, each limited to deadline per tick.
func NewRunner(sources []Enabled, deadline time.Duration, logger *slog.Logger) *Runner {
	return &Runner{
		sources:  sources,
		deadline: deadline,
		logger:   logger,
		inFlight: make(map[string]bool),
	}
}

type outcome struct {
	part snapshot.Part
	err  error
	took time.Duration
}

// Collect runs all sources concurrently and returns their parts (nil for
// failed sources) and statuses, both in table order. It returns when every
// source has finished or hit its deadline.
func (r *Runner) Collect(ctx context.Context) ([]snapshot.Part, []snapshot.SourceStatus) {
	parts := make([]snapshot.Part, len(r.sources))
	statuses := make([]snapshot.SourceStatus, len(r.sources))
	var wg sync.WaitGroup
	for i, e := range r.sources {
		statuses[i].Name = e.Name
		if e.InitErr != nil {
			statuses[i].Err = e.InitErr.Error()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := r.collectOne(ctx, e)
			parts[i] = o.part
			statuses[i].Duration = o.took
			statuses[i].Success = o.err == nil
			if o.err != nil {
				statuses[i].Err = o.err.Error()
				parts[i] = nil
			}
		}()
	}
	wg.Wait()
	return parts, statuses
}

// collectOne runs one source with its deadline. The source runs on its own
// goroutine so that a source ignoring its context is abandoned at the
// deadline rather than stalling the tick.
func (r *Runner) collectOne(ctx context.Context, e Enabled) outcome {
	if !r.claim(e.Name) {
		return outcome{err: ErrStillRunning}
	}
	// Cancelling on return tells an abandoned source to give up.
	ctx, cancel := context.WithTimeout(ctx, r.deadline)
	defer cancel()
	start := time.Now()
	done := make(chan outcome, 1)
	r.running.Add(1)
	go func() {
		defer r.running.Done()
		defer r.release(e.Name)
		defer func() {
			if p := recover(); p != nil {
				r.logger.Error("collector panicked", "collector", e.Name, "panic", p)
				done <- outcome{err: fmt.Errorf("panic: %v", p), took: time.Since(start)}
			}
		}()
		part, err := e.Source.Collect(ctx)
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("deadline %s exceeded: %w", r.deadline, ctx.Err())
		}
		done <- outcome{part: part, err: err, took: time.Since(start)}
	}()
	select {
	case o := <-done:
		return o
	case <-ctx.Done():
		return outcome{err: fmt.Errorf("deadline %s exceeded: %w", r.deadline, ctx.Err()), took: time.Since(start)}
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
// up to closeWait for collects abandoned at their deadline. A source still
// collecting then is left open rather than closed under its own feet.
func (r *Runner) Close() error {
	waited := make(chan struct{})
	go func() { r.running.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(closeWait):
	}
	var errs []error
	for _, e := range r.sources {
		if !r.claim(e.Name) {
			r.logger.Warn("collector still running at shutdown; not closing it", "collector", e.Name)
			continue
		}
		if c, ok := e.Source.(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", e.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}
