package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/headroom-dev/headroom/snapshot"
)

func f(v float64) *float64 { return &v }

// fullSnapshot has every kind of reading, so every family is emitted.
func fullSnapshot() *snapshot.Snapshot {
	r := uint64(0x44)
	return &snapshot.Snapshot{
		Node: "node-a", Time: time.Unix(1700000000, 0), Duration: 2 * time.Millisecond,
		Sources: []snapshot.SourceStatus{{Name: "nvml", Success: true, Duration: time.Millisecond}},
		System:  snapshot.System{DriverVersion: "550.54.15", DCGM: &snapshot.DCGM{Up: true}},
		GPUs: []snapshot.GPU{{
			Index: 0, UUID: "GPU-a", Name: "H100", PCIBusID: "0000:01:00.0",
			Memory: &snapshot.Memory{Total: 100, Used: 60, Free: 39, Reserved: 1}, Utilization: &snapshot.Utilization{GPU: 0.5, Memory: 0.25},
			Profiling: &snapshot.Profiling{SMActive: f(0.45), SMOccupancy: f(0.25), TensorActive: f(0.3), DRAMActive: f(0.6),
				PCIeTxBytes: f(1e9), PCIeRxBytes: f(2e9), NVLinkTxBytes: f(3e9), NVLinkRxBytes: f(4e9)},
			SMActive: f(0.4), SMOccupancy: f(0.2), TemperatureCelsius: f(60), PowerWatts: f(300), SMClockHz: f(1.98e9), MemoryClockHz: f(2.6e9), EnergyJoules: f(5e6),
			ThrottleReasons: &r, ECC: &snapshot.ECC{Corrected: 3, Aggregate: &snapshot.ECCCounts{Corrected: 9, Uncorrected: 2}}, RemappedRows: &snapshot.RemappedRows{Uncorrectable: 1, Pending: true},
			XidErrors: map[uint64]uint64{48: 2},
			Processes: []snapshot.Process{{PID: 42, UsedMemory: 50, SMUtil: f(0.3), MIGInstance: -1}, {PID: 43, UsedMemory: 10, MIGInstance: 1}},
			MIG:       []snapshot.MIGDevice{{UUID: "MIG-a", GPUInstanceID: 1, Name: "1g.10gb", Memory: &snapshot.Memory{Total: 10, Used: 10}, SMActive: f(0.35)}},
		}},
		Attribution: &snapshot.Attribution{
			Owners: map[string][]snapshot.Owner{"GPU-a": {{Namespace: "llm", Pod: "vllm-0", Container: "vllm"}}},
			Pods: []snapshot.Pod{{UID: "u1", Namespace: "llm", Name: "vllm-0", IP: "10.0.0.5", Containers: []snapshot.Container{
				{Name: "vllm", ID: "c1", Memory: &snapshot.ContainerMemory{WorkingSet: 5, Anon: 4, File: 2, CPUSeconds: 9},
					GPUs: map[string]snapshot.GPUUse{"GPU-a": {Memory: 50, Contexts: 1}}},
				{Name: "istio-proxy", ID: "c2", Sidecar: true, Memory: &snapshot.ContainerMemory{WorkingSet: 1}},
			}, ModelServer: fullModelServer()}},
			Kubelet: snapshot.SourceFreshness{LastSuccess: time.Unix(1700000000, 0)},
			Runtime: snapshot.SourceFreshness{LastSuccess: time.Unix(1699999990, 0), StaleSince: time.Unix(1700000000, 0)},
		},
		Energy: &snapshot.Energy{
			GPUs:           map[string]snapshot.GPUEnergy{"GPU-a": {Idle: 10, Unowned: 2, Unknown: 1}},
			Containers:     []snapshot.ContainerEnergy{{Namespace: "llm", Pod: "vllm-0", Container: "vllm", GPU: "GPU-a", Joules: 40}},
			PerOutputToken: []snapshot.PodEnergyPerToken{{Namespace: "llm", Pod: "vllm-0", Engine: "vllm", Joules: 1.5}},
		},
		Mesh: &snapshot.Mesh{Ztunnel: &snapshot.Ztunnel{
			Present: true, Namespace: "istio-system", Pod: "ztunnel-x", PIDs: []uint32{7},
			Memory: &snapshot.ContainerMemory{WorkingSet: 30, Anon: 20, CPUSeconds: 4},
			Traffic: &snapshot.ZtunnelTraffic{
				Flows:    []snapshot.ZtunnelFlow{{Namespace: "llm", Pod: "vllm-0", UID: "u1", Netns: 9, Leg: snapshot.LegHBONE, BytesSent: 10, BytesReceived: 20, Opened: 3, Closed: 1}},
				Threads:  []snapshot.ZtunnelThread{{PID: 7, TID: 8, Name: "ztunnel-worker", CPUSeconds: 1.5}},
				Programs: []snapshot.BPFProgram{{Name: "send_length", Attached: true, RunCount: 100, RunSeconds: 1e-5}},
			},
		}},
	}
}

func TestEveryCatalogueMetricIsEmittedAndLintClean(t *testing.T) {
	t.Parallel()
	s := fullSnapshot()
	e := New(func() *snapshot.Snapshot { return s })
	fams, err := e.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.MetricFamily{}
	for _, fam := range fams {
		got[fam.GetName()] = fam
	}
	for _, m := range Catalogue() {
		fam, ok := got[m.Name]
		if !ok {
			t.Errorf("%s not emitted for a snapshot with every reading", m.Name)
			continue
		}
		for _, series := range fam.Metric {
			if len(series.Label) != len(m.Labels) {
				t.Errorf("%s: series has %d labels, catalogue says %v", m.Name, len(series.Label), m.Labels)
			}
			for i := 1; i < len(series.Label); i++ {
				if series.Label[i-1].GetName() >= series.Label[i].GetName() {
					t.Errorf("%s: label pairs not sorted: %v", m.Name, series.Label)
				}
			}
		}
	}
	problems, err := testutil.GatherAndLint(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestLostGPUKeepsIdentityOnly(t *testing.T) {
	t.Parallel()
	s := fullSnapshot()
	s.GPUs[0] = snapshot.GPU{Index: 0, UUID: "GPU-a", Name: "H100", Lost: true, XidErrors: map[uint64]uint64{79: 1}}
	e := New(func() *snapshot.Snapshot { return s })
	want := `
# HELP headroom_gpu_lost 1 if the GPU fell off the bus (NVML_ERROR_GPU_IS_LOST); its other readings are then absent.
# TYPE headroom_gpu_lost gauge
headroom_gpu_lost{container="vllm",gpu="0",model="H100",namespace="llm",node="node-a",pod="vllm-0",uuid="GPU-a"} 1
# HELP headroom_gpu_xid_errors_total Xid errors seen since the agent started, by code.
# TYPE headroom_gpu_xid_errors_total counter
headroom_gpu_xid_errors_total{container="vllm",gpu="0",model="H100",namespace="llm",node="node-a",pod="vllm-0",uuid="GPU-a",xid="79"} 1
`
	if err := testutil.GatherAndCompare(e, strings.NewReader(want), "headroom_gpu_lost", "headroom_gpu_xid_errors_total", "headroom_gpu_memory_used_bytes", "headroom_gpu_processes"); err != nil {
		t.Error(err)
	}
}

func TestNothingBeforeFirstSample(t *testing.T) {
	t.Parallel()
	e := New(func() *snapshot.Snapshot { return nil })
	if fams, _ := e.Gather(); len(fams) != 0 {
		t.Errorf("families before the first sample: %v", fams)
	}
}
