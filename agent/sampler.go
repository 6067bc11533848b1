package agent

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/snapshot"
)

// Sampler runs every collector on its own clock and publishes each result as
// an immutable snapshot. Readers (the exporter, the report stream) only ever
// load the latest pointer.
type Sampler struct {
	runner   *collector.Runner
	node     string
	interval time.Duration
	latest   atomic.Pointer[snapshot.Snapshot]
	// onPublish, if set, runs after each snapshot is published (the
	// /metrics handler pre-renders there).
	onPublish func()
}

// NewSampler returns a sampler over runner.
func NewSampler(runner *collector.Runner, node string, interval time.Duration) *Sampler {
	return &Sampler{runner: runner, node: node, interval: interval}
}

// Latest returns the newest snapshot, or nil before the first sample.
func (s *Sampler) Latest() *snapshot.Snapshot { return s.latest.Load() }

// SampleOnce collects every source, publishes the snapshot and returns it.
func (s *Sampler) SampleOnce(ctx context.Context) *snapshot.Snapshot {
	start := time.Now()
	snap := &snapshot.Snapshot{Node: s.node, Time: start}
	snap.Sources = s.runner.Collect(ctx, snap)
	snap.Duration = time.Since(start)
	s.latest.Store(snap)
	if s.onPublish != nil {
		s.onPublish()
	}
	return snap
}

// Run samples at once and then every interval until ctx ends. A tick that
// overruns the interval delays the next one instead of queueing ticks.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.SampleOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
