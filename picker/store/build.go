package store

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Target is one endpoint of the pool, before telemetry is joined to it.
type Target struct {
	Namespace, Name, IP string
	Port                int
	// Node is the node the pool says the pod runs on (an InferencePool's
	// pods always name theirs; a static endpoint may), empty when unknown.
	Node string
	// UID is the pod's UID when the pool knows it (InferencePool pods).
	UID string
	// Address is "ip:port"; NewTarget fills it once, so rebuilding a view
	// (many times a second) does not format it again.
	Address string
}

// NewTarget returns the target for a pod's IP and port; set Node and UID
// when the pool knows them.
func NewTarget(namespace, name, ip string, port int) Target {
	return Target{Namespace: namespace, Name: name, IP: ip, Port: port, Address: net.JoinHostPort(ip, strconv.Itoa(port))}
}

// located is a pod found in a node's report.
type located struct {
	node *ingest.NodeView
	pod  *telemetryv1.Pod
}

// Build joins targets with the newest node reports. A report speaks only
// for its own node (the ingest checked the sender's identity), so a pod's
// telemetry is taken only from a report that can be the pod's (see
// choose): one node cannot attract or repel another node's pods by
// claiming their IPs. A report's pod with a port joins only the target
// with that port (standalone endpoints); one without joins every port of
// its IP.
func Build(targets []Target, nodes []ingest.NodeView, now time.Time) *View {
	// One pod per IP is the rule; several (standalone servers on one host,
	// an IP reused across a restart, or a node claiming another's IP) go
	// to the overflow list.
	byIP := make(map[string]located, len(nodes)*8)
	var more map[string][]located
	for i := range nodes {
		n := &nodes[i]
		for _, p := range n.Report.GetPods() {
			ip := p.GetIp()
			if ip == "" {
				continue
			}
			if _, dup := byIP[ip]; !dup {
				byIP[ip] = located{node: n, pod: p}
				continue
			}
			if more == nil {
				more = map[string][]located{}
			}
			more[ip] = append(more[ip], located{node: n, pod: p})
		}
	}
	v := &View{Endpoints: make([]*Endpoint, 0, len(targets)), Built: now}
	backing := make([]Endpoint, len(targets))
	var gpus []*telemetryv1.GPU // one backing array for every endpoint's GPUs
	for i, t := range targets {
		e := &backing[i]
		e.Address = t.Address
		if e.Address == "" {
			e.Address = net.JoinHostPort(t.IP, strconv.Itoa(t.Port))
		}
		e.IP, e.Port, e.Namespace, e.Name = t.IP, t.Port, t.Namespace, t.Name
		e.Stale = true
		if first, ok := byIP[t.IP]; ok {
			loc, found, refused := choose(&t, first, more[t.IP])
			switch {
			case found:
				gpus = join(e, loc, gpus)
			case refused:
				e.Refused = true
				v.Refused++
			}
		}
		v.Endpoints = append(v.Endpoints, e)
	}
	slices.SortFunc(v.Endpoints, func(a, b *Endpoint) int { return cmp.Compare(a.Address, b.Address) })
	return v
}

// choose picks, among the report pods that carry t's IP (first, then
// more), the one that can be t's pod:
//
//   - its port is t's, or it names none;
//   - when t names its node, the report is that node's, and when both
//     name the pod's UID they are the same (a new pod that took the IP of
//     a deleted one, on any node, does not get its last report);
//   - when t names no node (static endpoints without @node), exactly one
//     node claims the IP. A report past its TTL whose agent stream is
//     closed (the node, or its agent, is gone) claims nothing; while any
//     node's claim is fresh, stale claims do not count. Two nodes claiming
//     it leave the endpoint without telemetry: neither can be believed.
//
// refused is true when some report named the IP but none could be t's.
func choose(t *Target, first located, more []located) (loc located, found, refused bool) {
	if t.Node != "" {
		for c := range claims(first, more) {
			if !portMatches(c, t.Port) {
				continue
			}
			if c.node.Node == t.Node && (t.UID == "" || c.pod.GetUid() == "" || c.pod.GetUid() == t.UID) {
				return c, true, false
			}
			refused = true
		}
		return located{}, false, refused
	}
	var fresh, stale located
	var nFresh, nStale int // distinct nodes claiming
	for c := range claims(first, more) {
		if !portMatches(c, t.Port) {
			continue
		}
		switch {
		case !c.node.Stale:
			if nFresh == 0 || c.node.Node != fresh.node.Node {
				nFresh++
			}
			if nFresh == 1 && fresh.node == nil {
				fresh = c
			}
		case c.node.Connected:
			if nStale == 0 || c.node.Node != stale.node.Node {
				nStale++
			}
			if nStale == 1 && stale.node == nil {
				stale = c
			}
		default:
			refused = true // a dead node's claim: not believed, not counted
		}
	}
	switch {
	case nFresh == 1:
		return fresh, true, false
	case nFresh == 0 && nStale == 1:
		return stale, true, false
	case nFresh > 1 || nStale > 1:
		return located{}, false, true
	}
	return located{}, false, refused
}

// claims yields first, then more.
func claims(first located, more []located) func(yield func(located) bool) {
	return func(yield func(located) bool) {
		if !yield(first) {
			return
		}
		for _, c := range more {
			if !yield(c) {
				return
			}
		}
	}
}

func portMatches(c located, port int) bool {
	p := int(c.pod.GetPort())
	return p == 0 || p == port
}

// join fills e from loc, appending e's GPUs to gpus (shared backing).
func join(e *Endpoint, loc located, gpus []*telemetryv1.GPU) []*telemetryv1.GPU {
	n := loc.node
	e.Node, e.Pod = n.Node, loc.pod
	e.ReportTime = n.Received
	if t := n.Report.GetSampleTimeUnixNano(); t > 0 {
		e.ReportSample = time.Unix(0, int64(t))
	}
	e.Stale = n.Stale
	start := len(gpus)
	if uuids := loc.pod.GetGpuUuids(); len(uuids) > 0 {
		mig := loc.pod.GetMigUuids()
		for _, g := range n.Report.GetGpus() {
			if slices.Contains(uuids, g.GetUuid()) {
				gpus = appendGPU(gpus, g, mig)
			}
		}
	}
	if len(gpus) > start {
		e.GPUs = gpus[start:len(gpus):len(gpus)]
	}
	return gpus
}
