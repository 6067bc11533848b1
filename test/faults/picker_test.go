package faults

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/picker/app"
	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

const (
	decisions = "headroom_picker_decisions_total"
	blind     = "headroom_picker_decisions_without_fresh_telemetry_total"
)

// TestAllTelemetryStale: every node's report outlives its TTL (the agents
// went quiet). The picker stays ready and routes every request to an
// endpoint of the pool, ranked by its own in-flight requests, and says so:
// each decision counts as degraded and as made without fresh telemetry.
// New reports bring telemetry-driven routing back.
func TestAllTelemetryStale(t *testing.T) {
	t.Parallel()
	const busy, idle = "10.0.0.1:8000", "10.0.0.2:8000"
	p := startPicker(t, func(o *app.Options) { o.Pool.Endpoints = busy + "," + idle })
	p.waitReadiness(t, true)
	m := p.MetricsAddr().String()
	report := func(seq uint64, interval time.Duration) {
		p.send(t, nodeReport("gpu-1", seq, interval, modelServerPod("busy", "10.0.0.1", 40, 0.9)))
		p.send(t, nodeReport("gpu-2", seq, interval, modelServerPod("idle", "10.0.0.2", 0, 0.1)))
	}
	byTelemetry := func() bool { // one request, routed by fresh telemetry to the idle pod
		before := metric(t, m, blind, nil)
		r := p.route(t)
		return r.first() == idle && metric(t, m, blind, nil) == before
	}
	report(1, time.Minute)
	eventually(t, "a decision by fresh telemetry", byTelemetry)

	// The newest reports say their agents sample every 100 ms, and then
	// nothing more comes: 300 ms later every node is stale.
	report(2, 100*time.Millisecond)
	eventually(t, "both nodes stale", func() bool {
		return metric(t, m, "headroom_picker_nodes", map[string]string{"state": "stale"}) == 2
	})
	routedIn := func(r routed) {
		t.Helper()
		if r.status != http.StatusOK || (r.first() != busy && r.first() != idle) {
			t.Fatalf("with stale telemetry the picker answered %+v; want a destination of the pool", r)
		}
	}
	eventually(t, "the view to see the staleness", func() bool {
		before := metric(t, m, blind, nil)
		routedIn(p.route(t))
		return metric(t, m, blind, nil) > before
	})
	const n = 20
	degraded0, blind0 := metric(t, m, decisions, map[string]string{"result": "degraded"}), metric(t, m, blind, nil)
	for range n {
		routedIn(p.route(t))
	}
	if d := metric(t, m, decisions, map[string]string{"result": "degraded"}) - degraded0; d != n {
		t.Errorf("%d of %d decisions counted degraded, want all", int(d), n)
	}
	if d := metric(t, m, blind, nil) - blind0; d != n {
		t.Errorf("%s grew by %d over %d requests, want %d", blind, int(d), n, n)
	}
	if ready, _ := p.readiness(t); !ready {
		t.Error("stale telemetry made the picker unready; a FailClose gateway would refuse everything")
	}

	report(3, time.Minute)
	eventually(t, "telemetry-driven routing after fresh reports", byTelemetry)
}

// startStreamer runs an agent's report streamer (plaintext, loopback)
// towards addr until the test ends.
func startStreamer(t *testing.T, addr string, maxBackoff time.Duration) *stream.Streamer {
	t.Helper()
	o := stream.DefaultOptions()
	o.Addresses, o.Insecure, o.MaxBackoff = addr, true, maxBackoff
	s, err := stream.New(o, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

// holdsAll reports whether p holds a connected stream and report seq from
// each of the nodes.
func holdsAll(p *picker, nodes int, seq uint64) func() bool {
	return func() bool {
		vs := p.Store().Nodes()
		return len(vs) == nodes && !slices.ContainsFunc(vs, func(v ingest.NodeView) bool {
			return !v.Connected || v.Report.GetSequence() != seq
		})
	}
}

// TestReconnectStorm: 200 agents stream to a picker that dies; a new one
// comes up on the same address and every agent reconnects to it at about
// the same time. All 200 are taken back, each re-sends its newest report
// at once, new reports flow on every stream, and nothing is refused.
func TestReconnectStorm(t *testing.T) {
	const agents = 200
	endpoints := func(o *app.Options) { o.Pool.Endpoints = "10.0.0.1:8000" }
	p := startPicker(t, endpoints)
	addr := p.IngestAddr().String()
	streamers := make([]*stream.Streamer, agents)
	node := func(i int) string { return fmt.Sprintf("gpu-%03d", i) }
	for i := range streamers {
		streamers[i] = startStreamer(t, addr, time.Second)
		streamers[i].Publish(nodeReport(node(i), 1, time.Minute))
	}
	eventually(t, "200 agents streaming", holdsAll(p, agents, 1))

	p.stop(t)
	eventually(t, "every agent to notice the picker is gone", func() bool {
		return !slices.ContainsFunc(streamers, func(s *stream.Streamer) bool { return s.Metrics().Connected(addr) })
	})
	p2 := startPicker(t, func(o *app.Options) { endpoints(o); o.IngestAddress = addr })
	eventually(t, "all 200 back with their newest report", holdsAll(p2, agents, 1))
	for i, s := range streamers {
		s.Publish(nodeReport(node(i), 2, time.Minute))
	}
	eventually(t, "new reports on every reconnected stream", holdsAll(p2, agents, 2))
	if n := metric(t, p2.MetricsAddr().String(), "headroom_picker_reports_rejected_total", nil); n != 0 {
		t.Errorf("%v streams or reports refused during the storm", n)
	}
	p2.waitReadiness(t, true)
	if r := p2.route(t); r.first() != "10.0.0.1:8000" {
		t.Errorf("routing after the storm: %+v", r)
	}
}

// bigReport is a report of about 40 KiB with memory of its own, so a
// streamer that queued them would show it.
func bigReport(seq uint64) *telemetryv1.NodeReport {
	r := nodeReport("gpu-node-1", seq, 100*time.Millisecond)
	r.Gpus = []*telemetryv1.GPU{{Uuid: "GPU-0", Name: strings.Repeat("x", 40<<10)}}
	return r
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// streamErrors is the streamer's count of failed streams to addr.
func streamErrors(t *testing.T, s *stream.Streamer, addr string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Metrics())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "headroom_report_stream_errors_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, map[string]string{"picker": addr}) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestPickerOutageMemoryBounded: the picker is down for what would be 10
// minutes of reports at 10 Hz (6,000 reports of 40 KiB, 234 MiB if they
// were queued), published across 30 failed reconnection attempts. The
// agent holds only the newest report: its heap and goroutines stay where
// they were, and the picker that comes back gets report 6,000 at once.
func TestPickerOutageMemoryBounded(t *testing.T) {
	endpoints := func(o *app.Options) { o.Pool.Endpoints = "10.0.0.1:8000" }
	p := startPicker(t, endpoints)
	addr := p.IngestAddr().String()
	s := startStreamer(t, addr, 100*time.Millisecond)
	s.Publish(bigReport(1))
	eventually(t, "the first report", holdsAll(p, 1, 1))
	p.stop(t)
	eventually(t, "the agent to notice the outage", func() bool { return !s.Metrics().Connected(addr) })

	heap0, goroutines0 := heapInUse(), runtime.NumGoroutine()
	const batches, perBatch = 30, 200
	seq := uint64(1)
	for range batches {
		failed := streamErrors(t, s, addr)
		for range perBatch {
			seq++
			s.Publish(bigReport(seq))
		}
		eventually(t, "one more failed reconnection attempt", func() bool { return streamErrors(t, s, addr) > failed })
	}
	heap1, goroutines1 := heapInUse(), runtime.NumGoroutine()
	t.Logf("after %d reports and %d failed attempts: heap %+d KiB, goroutines %d → %d",
		seq-1, int(streamErrors(t, s, addr)), (int64(heap1)-int64(heap0))>>10, goroutines0, goroutines1)
	if grown := int64(heap1) - int64(heap0); grown > 8<<20 {
		t.Errorf("the agent's heap grew %d MiB while the picker was down", grown>>20)
	}
	if goroutines1 > goroutines0+10 {
		t.Errorf("goroutines grew from %d to %d while the picker was down", goroutines0, goroutines1)
	}

	p2 := startPicker(t, func(o *app.Options) { endpoints(o); o.IngestAddress = addr })
	eventually(t, "the newest report on the picker's return", holdsAll(p2, 1, seq))
}
