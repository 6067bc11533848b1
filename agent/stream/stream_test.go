package stream

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/internal/testpki"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// bigReport is a report of about 40 KiB, each with its own memory.
func bigReport(seq uint64) *telemetryv1.NodeReport {
	r := nodeReport("node-a", seq)
	r.Gpus[0].Name = strings.Repeat("x", 40<<10)
	return r
}

func TestEveryReplicaGetsEveryReport(t *testing.T) {
	p := newPKI(t)
	a := startPicker(t, p, "127.0.0.1", 0)
	b := startPicker(t, p, "127.0.0.2", a.port(t))
	r := &resolver{}
	r.set("127.0.0.1", "127.0.0.2")
	s := startAgent(t, p.agentOptions(t, "node-a", a.port(t)), r)

	s.Publish(nodeReport("node-a", 1))
	eventually(t, "both replicas hold report 1", func() bool { return a.sequence("node-a") == 1 && b.sequence("node-a") == 1 })

	// Kill replica b mid-stream: a keeps getting every report.
	b.g.Stop()
	for seq := uint64(2); seq <= 20; seq++ {
		s.Publish(nodeReport("node-a", seq))
		eventually(t, fmt.Sprintf("replica a holds report %d", seq), func() bool { return a.sequence("node-a") == seq })
	}
	// b comes back on the same address: it gets the newest report on
	// connect, with nothing new published.
	b2 := startPicker(t, p, "127.0.0.2", a.port(t))
	eventually(t, "restarted replica holds the newest report", func() bool { return b2.sequence("node-a") == 20 })
	eventually(t, "connected gauge", func() bool { return s.Metrics().Connected(b2.addr) && s.Metrics().Connected(a.addr) })
	v, _ := b2.srv.Store().Node("node-a")
	if !v.Connected || v.Stale {
		t.Fatalf("restarted replica's view %+v", v)
	}
}

func TestReplicaLeavesDNS(t *testing.T) {
	p := newPKI(t)
	a := startPicker(t, p, "127.0.0.1", 0)
	b := startPicker(t, p, "127.0.0.2", a.port(t))
	r := &resolver{}
	r.set("127.0.0.1", "127.0.0.2")
	s := startAgent(t, p.agentOptions(t, "node-a", a.port(t)), r)
	s.Publish(nodeReport("node-a", 1))
	eventually(t, "b connected", func() bool { v, _ := b.srv.Store().Node("node-a"); return v.Connected })
	r.set("127.0.0.1")
	eventually(t, "b's stream closed after re-resolution", func() bool { v, _ := b.srv.Store().Node("node-a"); return !v.Connected })
	if got := s.Replicas(); len(got) != 1 || got[0] != a.addr {
		t.Fatalf("replicas %v", got)
	}
	eventually(t, "b's series dropped", func() bool { return !seriesFor(t, s, b.addr) })
	if !seriesFor(t, s, a.addr) {
		t.Fatal("a's series are gone too")
	}
	// A failing lookup keeps the current streams.
	r.set()
	s.Publish(nodeReport("node-a", 2))
	eventually(t, "a still gets reports", func() bool { return a.sequence("node-a") == 2 })
}

// While no picker is reachable the streamer holds only the newest report:
// publishing many large reports leaves the heap where it was.
func TestUnreachablePickerMemoryBounded(t *testing.T) {
	p := newPKI(t)
	r := &resolver{}
	r.set("127.0.0.1")
	s := startAgent(t, p.agentOptions(t, "node-a", 1), r) // nothing listens on port 1
	s.Publish(bigReport(0))
	before := heapInUse()
	const n = 2000 // × 40 KiB = 80 MiB if they were queued
	for seq := uint64(1); seq <= n; seq++ {
		s.Publish(bigReport(seq))
	}
	after := heapInUse()
	if grown := int64(after) - int64(before); grown > 8<<20 {
		t.Fatalf("heap grew %d MiB while the picker was down", grown>>20)
	}
	if s.latest.Load().report.GetSequence() != n {
		t.Fatal("newest report not held")
	}
}

func TestManyAgentsConnectAtOnce(t *testing.T) {
	p := newPKI(t)
	a := startPicker(t, p, "127.0.0.1", 0)
	b := startPicker(t, p, "127.0.0.2", a.port(t))
	r := &resolver{}
	r.set("127.0.0.1", "127.0.0.2")
	const agents = 200
	opts := make([]Options, agents)
	for i := range agents { // certificates first, so the agents start together
		opts[i] = p.agentOptions(t, fmt.Sprintf("node-%03d", i), a.port(t))
	}
	streamers := make([]*Streamer, agents)
	for i := range agents {
		streamers[i] = startAgent(t, opts[i], r)
	}
	for i, s := range streamers {
		s.Publish(nodeReport(fmt.Sprintf("node-%03d", i), 1))
	}
	for _, pk := range []*picker{a, b} {
		eventuallyWithin(t, 2*time.Minute, "every node on "+pk.addr, func() bool { return len(pk.srv.Store().Nodes()) == agents })
		for _, v := range pk.srv.Store().Nodes() {
			if !v.Connected || v.Report.GetSequence() != 1 {
				t.Fatalf("%s: %+v", pk.addr, v)
			}
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// seriesFor reports whether any of the streamer's series names addr.
func seriesFor(t *testing.T, s *Streamer, addr string) bool {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Metrics())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == addr {
					return true
				}
			}
		}
	}
	return false
}

// A picker whose certificate the agent cannot verify is a logged, counted
// stream failure, not a silent wait.
func TestTLSFailureIsCounted(t *testing.T) {
	p := newPKI(t)
	a := startPicker(t, p, "127.0.0.1", 0)
	o := p.agentOptions(t, "node-a", a.port(t))
	o.CAFile = testpki.NewCA(t, "someone-else").WriteCA(t, t.TempDir())
	r := &resolver{}
	r.set("127.0.0.1")
	s := startAgent(t, o, r)
	s.Publish(nodeReport("node-a", 1))
	eventually(t, "a counted stream error", func() bool {
		return testutil.ToFloat64(s.Metrics().streamErrors.WithLabelValues(a.addr)) >= 1
	})
	if a.sequence("node-a") != 0 {
		t.Fatal("a report got through an unverified connection")
	}
}
