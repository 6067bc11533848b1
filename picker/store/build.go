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
	// Address is "ip:port"; NewTarget fills it once, so rebuilding a view
	// (many times a second) does not format it again.
	Address string
}

// NewTarget returns the target for a pod's IP and port.
func NewTarget(namespace, name, ip string, port int) Target {
	return Target{Namespace: namespace, Name: name, IP: ip, Port: port, Address: net.JoinHostPort(ip, strconv.Itoa(port))}
}

// located is a pod found in a node's report.
type located struct {
	node *ingest.NodeView
	pod  *telemetryv1.Pod
}

// Build joins targets with the newest node reports by pod IP. A report's
// pod with a port joins only the target with that port (standalone
// endpoints); one without joins every port of its IP.
func Build(targets []Target, nodes []ingest.NodeView, now time.Time) *View {
	// One pod per IP is the rule; several (standalone servers on one host,
	// or an IP reused across a restart) go to the overflow list.
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
		first, ok := byIP[t.IP]
		if ok {
			if loc, found := find(append([]located{first}, more[t.IP]...), t.Port); found {
				gpus = join(e, loc, gpus)
			}
		}
		v.Endpoints = append(v.Endpoints, e)
	}
	slices.SortFunc(v.Endpoints, func(a, b *Endpoint) int { return cmp.Compare(a.Address, b.Address) })
	return v
}

func find(cands []located, port int) (located, bool) {
	for _, c := range cands {
		if p := int(c.pod.GetPort()); p == 0 || p == port {
			return c, true
		}
	}
	return located{}, false
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
		for _, g := range n.Report.GetGpus() {
			if slices.Contains(uuids, g.GetUuid()) {
				gpus = append(gpus, g)
			}
		}
	}
	if len(gpus) > start {
		e.GPUs = gpus[start:len(gpus):len(gpus)]
	}
	return gpus
}
