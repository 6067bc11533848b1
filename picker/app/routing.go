package app

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/picker/extproc"
	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
)

// prefixBytes is how much of the body feeds prefix affinity.
const prefixBytes = 4 << 10

// router is the ext_proc Decider: it scores the current view of the pool
// and learns from each response.
type router struct {
	views   *store.Refresher
	picker  *scoring.Picker
	n       int
	metrics *routeMetrics
	now     func() time.Time
	// adapters caches the LoRA adapter names of one view.
	adapters atomic.Pointer[viewAdapters]
}

type viewAdapters struct {
	view  *store.View
	names map[string]bool
}

// Decide implements extproc.Decider.
func (r *router) Decide(_ context.Context, req *extproc.Request) (extproc.Decision, error) {
	start := r.now()
	v := r.views.Current()
	sreq := scoring.Request{Model: req.Model, Sheddable: req.Sheddable}
	if r.isAdapter(v, req.Model) {
		sreq.LoRA = req.Model
	}
	sreq.PromptPrefix = req.Body[:min(len(req.Body), prefixBytes)]
	sreq.PromptBytes = len(req.Body)
	sreq.Subset = req.Subset
	d, err := r.picker.Decide(&sreq, v, r.n)
	r.metrics.decided(r.now().Sub(start), d, err, start)
	switch {
	case errors.Is(err, scoring.ErrShed):
		return extproc.Decision{}, extproc.ErrShed
	case errors.Is(err, scoring.ErrNoEndpoint):
		return extproc.Decision{}, extproc.ErrNoEndpoint
	case err != nil:
		return extproc.Decision{}, err
	}
	out := extproc.Decision{Endpoints: make([]string, len(d.Endpoints))}
	for i, e := range d.Endpoints {
		out.Endpoints[i] = e.Address
	}
	return out, nil
}

// Done implements extproc.Decider: the in-flight count of the endpoint
// the pick counted drops (even when the gateway fell back to another)
// and, for a successful response, the speed of the one that served is
// learnt.
func (r *router) Done(picked string, o extproc.Outcome) {
	r.picker.Finished(picked)
	r.metrics.done(o)
	if o.Status != 200 || o.Err != nil || o.FirstByte <= 0 {
		return
	}
	endpoint := o.Served
	if endpoint == "" {
		endpoint = picked
	}
	r.picker.ObserveResponse(endpoint, scoring.Response{FirstByte: o.FirstByte, Total: o.Total,
		PromptTokens: o.PromptTokens, CompletionTokens: o.CompletionTokens, RequestBytes: o.RequestBytes})
}

// isAdapter reports whether model names a LoRA adapter some endpoint of v
// runs or queues.
func (r *router) isAdapter(v *store.View, model string) bool {
	if model == "" {
		return false
	}
	a := r.adapters.Load()
	if a == nil || a.view != v {
		a = &viewAdapters{view: v, names: map[string]bool{}}
		for _, e := range v.Endpoints {
			if l := e.ModelServer().GetLora(); l != nil {
				for _, n := range l.GetRunning() {
					a.names[n] = true
				}
				for _, n := range l.GetWaiting() {
					a.names[n] = true
				}
			}
		}
		r.adapters.Store(a)
	}
	return a.names[model]
}

// hostPort is a helper for metrics labels: the endpoint address as is
// when it parses, else "invalid" (bounded).
func hostPort(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "invalid"
	}
	return addr
}
