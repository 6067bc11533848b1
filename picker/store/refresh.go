package store

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Refresher keeps the current View: it rebuilds it when the pool changes,
// and on a short clock when reports arrived or staleness may have moved.
// The request path reads Current, one atomic load.
type Refresher struct {
	targets func() []Target
	nodes   *ingest.Store
	direct  DirectReadings
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

// DirectReadings are the picker's own model-server readings, by endpoint
// address (picker/direct).
type DirectReadings interface {
	// Reading returns the fresh reading of the server at address, or nil.
	Reading(address string) *telemetryv1.ModelServer
	// Version changes whenever the readings do.
	Version() uint64
}

// SetDirect makes the views use d's readings for the endpoints that have
// no fresh report. Call it before Run.
func (r *Refresher) SetDirect(d DirectReadings) {
	r.direct = d
	r.rebuild()
}

// Current returns the newest view; never nil.
func (r *Refresher) Current() *View { return r.current.Load() }

func (r *Refresher) rebuild() {
	v := Build(r.targets(), r.nodes.Nodes(), r.now())
	if r.direct != nil {
		applyDirect(v, r.direct)
	}
	r.current.Store(v)
}

// applyDirect gives each endpoint without a fresh report the picker's own
// reading of its model server, when there is a fresh one.
func applyDirect(v *View, d DirectReadings) {
	for _, e := range v.Endpoints {
		if !e.Stale {
			continue
		}
		if ms := d.Reading(e.Address); ms != nil {
			e.Direct, e.Stale = ms, false
		}
	}
}

// version is what a rebuild depends on besides the clock and the pool.
func (r *Refresher) version() [2]uint64 {
	v := [2]uint64{r.nodes.Version()}
	if r.direct != nil {
		v[1] = r.direct.Version()
	}
	return v
}

// Run rebuilds until ctx ends. poolChanged signals a new target set.
func (r *Refresher) Run(ctx context.Context, poolChanged <-chan struct{}) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	seen := r.version()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poolChanged:
		case <-t.C:
			v := r.version()
			if v == seen && r.now().Sub(r.Current().Built) < r.maxAge {
				continue
			}
		}
		seen = r.version()
		r.rebuild()
	}
}
