package report

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

func ptr[T any](v T) *T { return &v }

// node returns a snapshot of gpus GPUs with procs processes each, owned by
// one pod per GPU, plus a sidecar in every pod.
func node(gpus, procs int, t0 time.Time) *snapshot.Snapshot {
	s := &snapshot.Snapshot{Node: "gpu-node-1", Time: t0, Attribution: &snapshot.Attribution{MeshVRAM: 0}}
	for g := range gpus {
		uuid := fmt.Sprintf("GPU-%08d-0000-0000-0000-000000000000", g)
		gpu := snapshot.GPU{
			Index: g, UUID: uuid, Name: "NVIDIA H100 80GB HBM3",
			Memory:      &snapshot.Memory{Total: 80 << 30, Used: 70 << 30, Free: 10 << 30},
			Utilization: &snapshot.Utilization{GPU: 0.9, Memory: 0.5},
			SMActive:    ptr(0.6), ThrottleReasons: ptr(uint64(0)),
			XidErrors: map[uint64]uint64{79: 1, 13: 2},
		}
		pod := fmt.Sprintf("vllm-%d", g)
		for p := range procs {
			gpu.Processes = append(gpu.Processes, snapshot.Process{PID: uint32(1000*g + p), UsedMemory: 1 << 30,
				Namespace: "llm", Pod: pod, Container: "vllm", MIGInstance: -1})
		}
		s.GPUs = append(s.GPUs, gpu)
		s.Attribution.Pods = append(s.Attribution.Pods, snapshot.Pod{
			UID: fmt.Sprintf("uid-%d", g), Namespace: "llm", Name: pod, IP: fmt.Sprintf("10.0.0.%d", g+1), GPUs: []string{uuid},
			Containers: []snapshot.Container{
				{Name: "vllm"},
				{Name: "istio-proxy", Sidecar: true, Memory: &snapshot.ContainerMemory{WorkingSet: 60 << 20}},
			},
			ModelServer: &snapshot.ModelServer{Engine: "vllm", SampleTime: t0.Add(-time.Second), Stats: snapshot.ModelServerStats{Waiting: 1}},
		})
	}
	return s
}

func TestBuild(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s := node(2, 3, t0)
	newer := &snapshot.ModelServer{Engine: "vllm", SampleTime: t0.Add(50 * time.Millisecond),
		StaleSince: t0, Stats: snapshot.ModelServerStats{Waiting: 7, Running: 3, KVCacheUsage: 0.4, HasKVCacheUsage: true,
			LoRA: &snapshot.LoRAState{Running: []string{"sql"}, MaxAdapters: 4},
			Latency: &snapshot.LatencyTotals{TTFTSum: 12.5, TTFTCount: 10, TPOTSum: 3, TPOTCount: 300,
				QueueSum: 1, QueueCount: 2, PrefillSum: 3, PrefillCount: 4, InferenceSum: 5, InferenceCount: 6, PromptTokensSum: 7, PromptTokensCount: 8}}}
	overlay := func(p *snapshot.Pod) *snapshot.ModelServer {
		if p.Name == "vllm-1" {
			return newer
		}
		return nil
	}
	r := Build(s, overlay, Meta{Instance: "i", Sequence: 9, Interval: time.Second})
	if dropped, err := telemetryv1.Validate(r); err != nil || len(dropped) > 0 {
		t.Fatalf("the picker refuses the agent's report (%v) or drops parts of it (%+v)", err, dropped)
	}
	if r.GetSampleTimeUnixNano() != uint64(newer.SampleTime.UnixNano()) {
		t.Fatalf("sample time %d: want the newest model-server reading's", r.GetSampleTimeUnixNano())
	}
	if r.GetNode() != "gpu-node-1" || r.GetSequence() != 9 || r.GetIntervalNano() != int64(time.Second) || len(r.GetGpus()) != 2 {
		t.Fatalf("header %v", r)
	}
	g := r.GetGpus()[1]
	if g.GetMemoryUsedBytes() != 70<<30 || g.GetSmActive() != 0.6 || g.GetUtilization() != 0.9 || len(g.GetProcesses()) != 3 {
		t.Fatalf("gpu %v", g)
	}
	if x := g.GetHealth().GetXidErrors(); len(x) != 2 || x[0].GetCode() != 13 || x[1].GetCount() != 1 {
		t.Fatalf("xid %v", x)
	}
	if g.GetProcesses()[0].GetPodUid() != "uid-1" {
		t.Fatalf("process owner %v", g.GetProcesses()[0])
	}
	ms0, ms1 := r.GetPods()[0].GetModelServer(), r.GetPods()[1].GetModelServer()
	if ms0.GetWaitingRequests() != 1 || ms0.KvCacheUsage != nil || ms0.GetStale() {
		t.Fatalf("snapshot reading %v", ms0)
	}
	if ms1.GetWaitingRequests() != 7 || ms1.GetKvCacheUsage() != 0.4 || !ms1.GetStale() || ms1.GetLora().GetMaxAdapters() != 4 {
		t.Fatalf("overlaid reading %v", ms1)
	}
	if l := ms1.GetLatency(); l.GetTtftSecondsSum() != 12.5 || l.GetTtftCount() != 10 || l.GetTpotSecondsSum() != 3 || l.GetTpotCount() != 300 ||
		l.GetQueueSecondsSum() != 1 || l.GetQueueCount() != 2 || l.GetPrefillSecondsSum() != 3 || l.GetPrefillCount() != 4 ||
		l.GetInferenceSecondsSum() != 5 || l.GetInferenceCount() != 6 || l.GetPromptTokensSum() != 7 || l.GetPromptTokensCount() != 8 {
		t.Fatalf("latency totals %v", l)
	}
	if m := r.GetMesh(); m.GetSidecarMemoryBytes() != 2*60<<20 || m.GetMeshVramBytes() != 0 {
		t.Fatalf("mesh %v", m)
	}
	var back telemetryv1.NodeReport
	b, err := proto.Marshal(r)
	if err != nil || proto.Unmarshal(b, &back) != nil || !proto.Equal(r, &back) {
		t.Fatal("report does not survive the wire")
	}
}

func TestBuildDCGMSupersedesGPM(t *testing.T) {
	s := node(1, 0, time.Now())
	s.GPUs[0].Profiling = &snapshot.Profiling{SMActive: ptr(0.3)}
	g := Build(s, nil, Meta{}).GetGpus()[0]
	if g.GetSmActive() != 0.3 || g.GetSmOccupancy() != 0 {
		t.Fatalf("gpu %v", g)
	}
}

func TestBuildWithoutAttribution(t *testing.T) {
	s := node(1, 0, time.Unix(5, 0))
	s.Attribution = nil
	r := Build(s, nil, Meta{})
	if len(r.GetPods()) != 0 || r.GetMesh() != nil || r.GetSampleTimeUnixNano() != uint64(5e9) {
		t.Fatalf("report %v", r)
	}
}

// BenchmarkBuild is one report of 8 GPUs × 100 processes and 8 pods,
// built and encoded once (what each tick costs the agent).
func BenchmarkBuild(b *testing.B) {
	s := node(8, 100, time.Now())
	b.ReportAllocs()
	var size int
	for b.Loop() {
		r := Build(s, nil, Meta{Sequence: 1})
		size = proto.Size(r)
	}
	b.ReportMetric(float64(size), "bytes/report")
}

// TestBuildCarriesEnergyPerToken: a pod with an energy-per-token estimate
// carries it; a pod without one carries none.
func TestBuildCarriesEnergyPerToken(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s := node(2, 1, t0)
	s.Energy = &snapshot.Energy{PerOutputToken: []snapshot.PodEnergyPerToken{{Namespace: "llm", Pod: "vllm-1", Engine: "vllm", Joules: 3.584}}}
	r := Build(s, nil, Meta{})
	if dropped, err := telemetryv1.Validate(r); err != nil || len(dropped) > 0 {
		t.Fatalf("the picker refuses the report (%v) or drops parts of it (%+v)", err, dropped)
	}
	if p := r.GetPods()[0]; p.EnergyPerOutputTokenJoules != nil {
		t.Errorf("pod %s carries %v J per token, want none", p.GetName(), *p.EnergyPerOutputTokenJoules)
	}
	if p := r.GetPods()[1]; p.GetEnergyPerOutputTokenJoules() != 3.584 {
		t.Errorf("pod %s carries %v J per token, want 3.584", p.GetName(), p.EnergyPerOutputTokenJoules)
	}
}

// TestBuildCarriesMIGSlices: a GPU's slices travel with their own
// readings, and a pod names the slice it holds.
func TestBuildCarriesMIGSlices(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	s := node(1, 1, t0)
	s.GPUs[0].MIG = []snapshot.MIGDevice{{UUID: "MIG-a", GPUInstanceID: 3, Name: "1g.10gb", Memory: &snapshot.Memory{Total: 10, Used: 4, Free: 6}, SMActive: ptr(0.7)}}
	s.Attribution.Pods[0].MIG = []string{"MIG-a"}
	r := Build(s, nil, Meta{})
	if dropped, err := telemetryv1.Validate(r); err != nil || len(dropped) > 0 {
		t.Fatalf("the picker refuses the report (%v) or drops parts of it (%+v)", err, dropped)
	}
	m := r.GetGpus()[0].GetMig()
	if len(m) != 1 || m[0].GetUuid() != "MIG-a" || m[0].GetGpuInstanceId() != 3 || m[0].GetMemoryUsedBytes() != 4 || m[0].GetSmActive() != 0.7 {
		t.Errorf("MIG slices %v", m)
	}
	if got := r.GetPods()[0].GetMigUuids(); len(got) != 1 || got[0] != "MIG-a" {
		t.Errorf("pod MIG UUIDs %v", got)
	}
}
