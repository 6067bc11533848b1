package ingest

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// defaultInterval is assumed for reports that do not say their interval.
const defaultInterval = time.Second

// Store keeps, per node, the newest report, when it arrived and how many
// agent streams are connected for the node. Reads take no lock on the hot
// path: each node's state is one atomic pointer.
type Store struct {
	ttlIntervals int
	now          func() time.Time

	mu    sync.RWMutex
	nodes map[string]*nodeSlot
	// version counts accepted reports and node changes, so a reader can
	// tell cheaply whether anything changed.
	version atomic.Uint64
}

// Version changes whenever a report is stored or a node is added or
// forgotten.
func (s *Store) Version() uint64 { return s.version.Load() }

type nodeSlot struct {
	latest  atomic.Pointer[received]
	streams atomic.Int32
	// lastClosed is the unix nanos the last stream for the node closed.
	lastClosed atomic.Int64
}

type received struct {
	report *telemetryv1.NodeReport
	at     time.Time
}

// NodeView is one node as the picker sees it.
type NodeView struct {
	Node   string
	Report *telemetryv1.NodeReport
	// Received is when the report arrived; Age is how long ago.
	Received time.Time
	Age      time.Duration
	// TTL is how old the report may get before the node is stale.
	TTL time.Duration
	// Connected is true while at least one agent stream for the node is open.
	Connected bool
	// Stale is true when the report is older than TTL: the node's
	// endpoints must not be routed by it.
	Stale bool
}

// NewStore returns an empty store; a report older than ttlIntervals of its
// agent's interval makes its node stale.
func NewStore(ttlIntervals int, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{ttlIntervals: max(ttlIntervals, 1), now: now, nodes: make(map[string]*nodeSlot)}
}

func (s *Store) slot(node string) *nodeSlot {
	s.mu.RLock()
	sl := s.nodes[node]
	s.mu.RUnlock()
	if sl != nil {
		return sl
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl = s.nodes[node]; sl == nil {
		sl = &nodeSlot{}
		s.nodes[node] = sl
	}
	return sl
}

// Put stores r unless the node already holds a newer report. It reports
// whether r was kept.
//
// Within one agent instance the sequence orders reports. Across instances
// (an agent restarted) the sample time does, except that a held report
// past its TTL always gives way: a node whose clock stepped back, or a
// report stamped ahead, cannot hold the node for longer than one TTL.
func (s *Store) Put(r *telemetryv1.NodeReport) bool {
	sl := s.slot(r.GetNode())
	now := s.now()
	next := &received{report: r, at: now}
	for {
		cur := sl.latest.Load()
		if cur != nil && !s.replaces(r, cur, now) {
			return false
		}
		if sl.latest.CompareAndSwap(cur, next) {
			s.version.Add(1)
			return true
		}
	}
}

func (s *Store) replaces(r *telemetryv1.NodeReport, cur *received, now time.Time) bool {
	if r.GetAgentInstance() == cur.report.GetAgentInstance() {
		return r.GetSequence() > cur.report.GetSequence()
	}
	return r.GetSampleTimeUnixNano() >= cur.report.GetSampleTimeUnixNano() || now.Sub(cur.at) > s.ttl(cur.report)
}

// ttl is how long a report may be routed by.
func (s *Store) ttl(r *telemetryv1.NodeReport) time.Duration {
	interval := time.Duration(r.GetIntervalNano())
	if interval <= 0 {
		interval = defaultInterval
	}
	return time.Duration(s.ttlIntervals) * interval
}

// Prune forgets nodes with no open stream whose report (or whose last
// stream) is older than keep: nodes the autoscaler removed. It returns how
// many it forgot.
func (s *Store) Prune(keep time.Duration) int {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name, sl := range s.nodes {
		if sl.streams.Load() > 0 {
			continue
		}
		last := time.Unix(0, sl.lastClosed.Load())
		if cur := sl.latest.Load(); cur != nil && cur.at.After(last) {
			last = cur.at
		}
		if now.Sub(last) > keep {
			delete(s.nodes, name)
			s.version.Add(1)
			n++
		}
	}
	return n
}

// attach records an open stream for node and returns its detach func.
func (s *Store) attach(node string) func() {
	sl := s.slot(node)
	sl.streams.Add(1)
	return func() {
		sl.lastClosed.Store(s.now().UnixNano())
		sl.streams.Add(-1)
	}
}

// Node returns one node's view.
func (s *Store) Node(node string) (NodeView, bool) {
	s.mu.RLock()
	sl := s.nodes[node]
	s.mu.RUnlock()
	if sl == nil {
		return NodeView{}, false
	}
	return s.view(node, sl, s.now()), true
}

// Nodes returns every node's view, sorted by name.
func (s *Store) Nodes() []NodeView {
	now := s.now()
	s.mu.RLock()
	out := make([]NodeView, 0, len(s.nodes))
	for name, sl := range s.nodes {
		out = append(out, s.view(name, sl, now))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b NodeView) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	return out
}

func (s *Store) view(node string, sl *nodeSlot, now time.Time) NodeView {
	v := NodeView{Node: node, Connected: sl.streams.Load() > 0, Stale: true}
	cur := sl.latest.Load()
	if cur == nil {
		return v
	}
	v.Report, v.Received = cur.report, cur.at
	v.Age = now.Sub(cur.at)
	v.TTL = s.ttl(cur.report)
	v.Stale = v.Age > v.TTL
	return v
}
