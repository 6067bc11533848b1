// Package pool is the set of endpoints headroom-picker may route to.
//
// A Source hands out the current ready endpoints, one per pod and target
// port, and signals each change. Two sources exist: Kubernetes watches one
// InferencePool (inference.networking.k8s.io/v1) and the pods its selector
// picks; Static serves a fixed --endpoints list for standalone use.
// Options chooses between them.
package pool

import (
	"cmp"
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
)

// Endpoint is one pod and one of its target ports.
type Endpoint struct {
	// Namespace and Name are the pod's (empty for static endpoints).
	Namespace, Name string
	IP              string
	Port            int
	// Ready is true for every endpoint a Source hands out.
	Ready bool
	// Node is the pod's node (a static endpoint's only when its entry
	// names one). The picker joins a pod only with its node's report.
	Node string
	// UID is the pod's UID (empty for static endpoints): a new pod that
	// reuses an IP does not take the previous pod's report.
	UID string
}

// Address is the endpoint as host:port ([ip]:port for IPv6), the form the
// gateway's destination header takes.
func (e Endpoint) Address() string {
	return net.JoinHostPort(e.IP, strconv.Itoa(e.Port))
}

// Source is the set of endpoints the picker may route to.
type Source interface {
	// Endpoints returns the current ready endpoints, sorted by IP, then
	// port. The slice is shared: callers must not modify it.
	Endpoints() []Endpoint
	// Updated is signalled (capacity 1, never closed) after every change
	// of Endpoints; read Endpoints again when it fires.
	Updated() <-chan struct{}
	// Synced reports whether the first full list is in (readiness).
	Synced() bool
}

// Runnable is a Source that keeps itself current while Run runs.
type Runnable interface {
	Source
	// Run works until ctx ends, then returns nil, or returns an error it
	// cannot recover from.
	Run(ctx context.Context) error
}

// publisher holds the endpoints a Source publishes and signals changes.
type publisher struct {
	endpoints atomic.Pointer[[]Endpoint]
	updated   chan struct{}
}

func newPublisher() publisher {
	return publisher{updated: make(chan struct{}, 1)}
}

// Endpoints implements Source.
func (p *publisher) Endpoints() []Endpoint {
	if eps := p.endpoints.Load(); eps != nil {
		return *eps
	}
	return nil
}

// Updated implements Source.
func (p *publisher) Updated() <-chan struct{} { return p.updated }

// publish stores eps (sorted, owned by the publisher from now on) and
// signals Updated when they differ from the current ones. It reports
// whether they did.
func (p *publisher) publish(eps []Endpoint) bool {
	if slices.Equal(eps, p.Endpoints()) {
		return false
	}
	eps = slices.Clip(eps) // an append by a reader copies
	p.endpoints.Store(&eps)
	select {
	case p.updated <- struct{}{}:
	default: // a signal is already pending
	}
	return true
}

// sortEndpoints sorts by IP (numerically), port, then pod, and drops
// repeats of an IP:port (host-network pods on one node share the node's
// IP): the first pod in namespace/name order keeps it.
func sortEndpoints(eps []Endpoint) []Endpoint {
	slices.SortFunc(eps, compareEndpoints)
	return slices.CompactFunc(eps, func(a, b Endpoint) bool { return a.IP == b.IP && a.Port == b.Port })
}

func compareEndpoints(a, b Endpoint) int {
	aa, errA := netip.ParseAddr(a.IP)
	ab, errB := netip.ParseAddr(b.IP)
	c := 0
	if errA == nil && errB == nil {
		c = aa.Compare(ab)
	} else {
		c = cmp.Compare(a.IP, b.IP)
	}
	if c != 0 {
		return c
	}
	return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}
