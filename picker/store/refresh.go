package store

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/picker/ingest"
)

// Refresher keeps the current View: it rebuilds it when the pool changes,
// and on a short clock when reports arrived or staleness may have moved.
// The request path reads Current, one atomic load.
type Refresher struct {
	targets func() []Target
	nodes   *ingest.Store
	every   time.Duration
	maxAge  time.Duration
	now     func() time.Time
	current atomic.Pointer[View]
}

// NewRefresher returns a refresher over the pool's targets and the node
// store. every bounds how stale a view's telemetry may be (default 20 ms);
// a view is rebuilt at least every 250 ms so staleness by age shows.
func NewRefresher(targets func() []Target, nodes *ingest.Store, every time.Duration) *Refresher {
	if every <= 0 {
		every = 20 * time.Millisecond
	}
	r := &Refresher{targets: targets, nodes: nodes, every: every, maxAge: 250 * time.Millisecond, now: time.Now}
	r.rebuild()
	return r
}

// Current returns the newest view; never nil.
func (r *Refresher) Current() *View { return r.current.Load() }

func (r *Refresher) rebuild() {
	r.current.Store(Build(r.targets(), r.nodes.Nodes(), r.now()))
}

// Run rebuilds until ctx ends. poolChanged signals a new target set.
func (r *Refresher) Run(ctx context.Context, poolChanged <-chan struct{}) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	seen := r.nodes.Version()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poolChanged:
		case <-t.C:
			v := r.nodes.Version()
			if v == seen && r.now().Sub(r.Current().Built) < r.maxAge {
				continue
			}
		}
		seen = r.nodes.Version()
		r.rebuild()
	}
}
