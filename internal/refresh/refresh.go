// Package refresh runs a cached client's refresh loop: on its own clock, on
// demand no closer than a minimum gap, with exponential backoff after
// failures, and with a record of since when the cache is stale. The kubelet
// and CRI clients share it so neither is ever called per scrape or sample.
package refresh

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Options configures a Loop.
type Options struct {
	// Interval is the period between refreshes.
	Interval time.Duration
	// MinGap is the least time between refreshes, whatever asks for them.
	MinGap time.Duration
	// MaxBackoff caps the wait after consecutive failures.
	MaxBackoff time.Duration
	// Timeout bounds one refresh.
	Timeout time.Duration
}

// Status is the health of what a Loop refreshes.
type Status struct {
	// LastSuccess is the time of the last good refresh (zero: never).
	LastSuccess time.Time
	// StaleSince is when refreshes started failing (zero: fresh).
	StaleSince time.Time
	LastErr    error
	Refreshes  uint64
	Failures   uint64
}

// Loop calls fetch on its schedule; fetch publishes what it fetched.
type Loop struct {
	opts    Options
	name    string
	fetch   func(context.Context) error
	logger  *slog.Logger
	trigger chan struct{}

	mu     sync.Mutex
	status Status
}

// New returns a loop named name (for logs) around fetch.
func New(name string, opts Options, fetch func(context.Context) error, logger *slog.Logger) *Loop {
	return &Loop{opts: opts, name: name, fetch: fetch, logger: logger, trigger: make(chan struct{}, 1)}
}

// Status returns the loop's health.
func (l *Loop) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// Trigger asks for a refresh before the interval ends. Triggers coalesce,
// wait for MinGap, and are ignored while backing off.
func (l *Loop) Trigger() {
	select {
	case l.trigger <- struct{}{}:
	default:
	}
}

// Run refreshes at once, then on schedule, until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		err := l.Refresh(ctx)
		wait := l.opts.Interval
		switch {
		case err == nil:
			backoff = 0
		case ctx.Err() != nil:
			return
		default:
			backoff = min(max(2*backoff, l.opts.MinGap), l.opts.MaxBackoff)
			wait = backoff
		}
		if !l.sleep(ctx, wait, err == nil) {
			return
		}
	}
}

func (l *Loop) sleep(ctx context.Context, wait time.Duration, triggerable bool) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var trig <-chan struct{}
	if triggerable {
		trig = l.trigger
	}
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	case <-trig:
	}
	gap := time.NewTimer(l.opts.MinGap)
	defer gap.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-gap.C:
		return true
	}
}

// Refresh fetches once and records the outcome.
func (l *Loop) Refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	err := l.fetch(ctx)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.status.Failures++
		if l.status.StaleSince.IsZero() {
			l.status.StaleSince = now
			l.logger.Warn(l.name+" unavailable; serving the last good answer, marked stale", "err", err)
		}
		l.status.LastErr = err
		return err
	}
	if !l.status.StaleSince.IsZero() {
		l.logger.Info(l.name+" answers again", "stale_for", now.Sub(l.status.StaleSince).Round(time.Millisecond))
	}
	l.status.Refreshes++
	l.status.LastSuccess, l.status.StaleSince, l.status.LastErr = now, time.Time{}, nil
	return nil
}
