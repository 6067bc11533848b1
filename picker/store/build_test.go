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
	// Past its TTL, its agent still connected: the last report joins,
	// marked stale.
	stale := ingest.NodeView{Node: "n2", Stale: true, Connected: true, Received: now, Report: &telemetryv1.NodeReport{
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

// TestBuildJoinsOnlyAPossibleReport: a report's pod joins a target only
// when the report can be that pod's.
func TestBuildJoinsOnlyAPossibleReport(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	const ip = "10.0.0.7"
	claim := func(node, uid string, stale, connected bool) ingest.NodeView {
		return ingest.NodeView{Node: node, Stale: stale, Connected: connected, Received: now, Report: &telemetryv1.NodeReport{
			Node: node, Pods: []*telemetryv1.Pod{{Name: "p-" + node, Uid: uid, Ip: ip}}}}
	}
	tests := []struct {
		name     string
		target   Target
		nodes    []ingest.NodeView
		wantNode string // "": no report joins
		refused  bool
	}{
		{"pool names the node: its report", Target{Node: "n1"},
			[]ingest.NodeView{claim("a-rogue", "", false, true), claim("n1", "", false, true)}, "n1", false},
		{"pool names the node: another node's claim alone", Target{Node: "n1"},
			[]ingest.NodeView{claim("a-rogue", "", false, true)}, "", true},
		{"same UID", Target{Node: "n1", UID: "u1"},
			[]ingest.NodeView{claim("n1", "u1", false, true)}, "n1", false},
		{"a new pod took the IP of a deleted one", Target{Node: "n1", UID: "u2"},
			[]ingest.NodeView{claim("n1", "u1", true, true)}, "", true},
		{"the report does not know the UID", Target{Node: "n1", UID: "u2"},
			[]ingest.NodeView{claim("n1", "", false, true)}, "n1", false},
		{"the dead node's last report, the IP now on another node", Target{Node: "n2", UID: "u2"},
			[]ingest.NodeView{claim("n1", "u1", true, false)}, "", true},
		{"no node named: one claim", Target{},
			[]ingest.NodeView{claim("n1", "", false, true)}, "n1", false},
		{"no node named: two fresh claims", Target{},
			[]ingest.NodeView{claim("n1", "", false, true), claim("n2", "", false, true)}, "", true},
		{"no node named: a fresh claim beats a stale one", Target{},
			[]ingest.NodeView{claim("n1", "", true, true), claim("n2", "", false, true)}, "n2", false},
		{"no node named: two stale claims", Target{},
			[]ingest.NodeView{claim("n1", "", true, true), claim("n2", "", true, true)}, "", true},
		{"no node named: a stale claim, agent connected", Target{},
			[]ingest.NodeView{claim("n1", "", true, true)}, "n1", false},
		{"no node named: a dead node's last report", Target{},
			[]ingest.NodeView{claim("n1", "", true, false)}, "", true},
		{"no node named: a dead node's and a live one's", Target{},
			[]ingest.NodeView{claim("n1", "", true, false), claim("n2", "", true, true)}, "n2", false},
		{"nobody claims it", Target{}, nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := tc.target
			tg.IP, tg.Port = ip, 8000
			v := Build([]Target{tg}, tc.nodes, now)
			e := v.Endpoints[0]
			if e.Node != tc.wantNode || (e.Pod != nil) != (tc.wantNode != "") {
				t.Fatalf("joined node %q (pod %v), want %q", e.Node, e.Pod, tc.wantNode)
			}
			if e.Refused != tc.refused || v.Refused != map[bool]int{true: 1}[tc.refused] {
				t.Fatalf("refused %v (view %d), want %v", e.Refused, v.Refused, tc.refused)
			}
			if tc.wantNode == "" && !e.Stale {
				t.Fatal("an endpoint with no telemetry is not stale")
			}
		})
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
