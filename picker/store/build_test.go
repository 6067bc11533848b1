package store

import (
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func TestBuildJoinsByIP(t *testing.T) {
	now := time.Unix(1000, 0)
	fresh := ingest.NodeView{Node: "n1", Received: now, Report: &telemetryv1.NodeReport{
		Node: "n1", SampleTimeUnixNano: uint64(now.UnixNano()),
		Gpus: []*telemetryv1.GPU{{Uuid: "GPU-a"}, {Uuid: "GPU-b"}},
		Pods: []*telemetryv1.Pod{
			{Name: "vllm-0", Ip: "10.0.0.1", GpuUuids: []string{"GPU-b"}, ModelServer: &telemetryv1.ModelServer{WaitingRequests: 4}},
			{Name: "standalone", Ip: "10.0.0.9", Port: 8001},
		},
	}}
	stale := ingest.NodeView{Node: "n2", Stale: true, Received: now, Report: &telemetryv1.NodeReport{
		Node: "n2", Pods: []*telemetryv1.Pod{{Name: "vllm-1", Ip: "10.0.0.2"}},
	}}
	v := Build([]Target{
		{Name: "vllm-1", IP: "10.0.0.2", Port: 8000},
		{Name: "vllm-0", IP: "10.0.0.1", Port: 8000},
		{Name: "new", IP: "10.0.0.3", Port: 8000},
		{Name: "sa", IP: "10.0.0.9", Port: 8000}, // the report names port 8001
		{Name: "sa", IP: "10.0.0.9", Port: 8001},
	}, []ingest.NodeView{fresh, stale}, now)
	want := []struct {
		addr, node string
		stale      bool
		gpus       int
	}{
		{"10.0.0.1:8000", "n1", false, 1},
		{"10.0.0.2:8000", "n2", true, 0},
		{"10.0.0.3:8000", "", true, 0},
		{"10.0.0.9:8000", "", true, 0},
		{"10.0.0.9:8001", "n1", false, 0},
	}
	if len(v.Endpoints) != len(want) {
		t.Fatalf("%d endpoints", len(v.Endpoints))
	}
	for i, w := range want {
		e := v.Endpoints[i]
		if e.Address != w.addr || e.Node != w.node || e.Stale != w.stale || len(e.GPUs) != w.gpus {
			t.Errorf("endpoint %d: %s node %q stale %v gpus %d; want %+v", i, e.Address, e.Node, e.Stale, len(e.GPUs), w)
		}
	}
	if e := v.Endpoints[0]; e.ModelServer().GetWaitingRequests() != 4 || e.GPUs[0].GetUuid() != "GPU-b" || !e.ReportSample.Equal(now) {
		t.Fatalf("vllm-0 joined wrong: %+v", e)
	}
}

// BenchmarkBuild joins 8,000 pods of 1,000 nodes.
func BenchmarkBuild(b *testing.B) {
	now := time.Now()
	var nodes []ingest.NodeView
	var targets []Target
	for n := range 1000 {
		r := &telemetryv1.NodeReport{Node: "n"}
		for g := range 8 {
			uuid := "GPU-" + string(rune('a'+g))
			ip := net4(n, g)
			r.Gpus = append(r.Gpus, &telemetryv1.GPU{Uuid: uuid})
			r.Pods = append(r.Pods, &telemetryv1.Pod{Ip: ip, GpuUuids: []string{uuid}})
			targets = append(targets, NewTarget("", "", ip, 8000))
		}
		nodes = append(nodes, ingest.NodeView{Node: "n", Report: r, Received: now})
	}
	b.ReportAllocs()
	for b.Loop() {
		Build(targets, nodes, now)
	}
}

func net4(n, g int) string {
	return "10." + itoa(n/250) + "." + itoa(n%250) + "." + itoa(g+1)
}

func itoa(i int) string {
	return string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}
