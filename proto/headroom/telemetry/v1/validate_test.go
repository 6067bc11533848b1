package telemetryv1

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestValidateQuarantinesPods(t *testing.T) {
	t.Parallel()
	names := func(n int, name string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = name
		}
		return out
	}
	tests := []struct {
		name   string
		mut    func(p *Pod, r *NodeReport)
		reason string // "": the pod is kept
	}{
		{"sound", func(*Pod, *NodeReport) {}, ""},
		{"no model server", func(p *Pod, _ *NodeReport) { p.ModelServer = nil }, ""},
		{"host network: no IP", func(p *Pod, _ *NodeReport) { p.Ip = "" }, ""},
		{"IPv6", func(p *Pod, _ *NodeReport) { p.Ip = "fd00::1" }, ""},
		{"no name", func(p *Pod, _ *NodeReport) { p.Name = "" }, "name"},
		{"long namespace", func(p *Pod, _ *NodeReport) { p.Namespace = strings.Repeat("n", 254) }, "name"},
		{"long uid", func(p *Pod, _ *NodeReport) { p.Uid = strings.Repeat("u", 254) }, "name"},
		{"IP not an IP", func(p *Pod, _ *NodeReport) { p.Ip = "vllm-0.llm" }, "ip"},
		{"IP with a zone", func(p *Pod, _ *NodeReport) { p.Ip = "fe80::1%eth0" }, "ip"},
		{"port beyond 65535", func(p *Pod, _ *NodeReport) { p.Port = 70000 }, "port"},
		{"too many GPUs", func(p *Pod, _ *NodeReport) {
			p.GpuUuids = names(MaxGPUsPerPod+1, "GPU-0")
		}, "gpus"},
		{"negative queue", func(p *Pod, _ *NodeReport) { p.ModelServer.WaitingRequests = -1 }, "requests"},
		{"infinite running", func(p *Pod, _ *NodeReport) {
			p.ModelServer.RunningRequests = math.Inf(1)
		}, "requests"},
		{"NaN queue", func(p *Pod, _ *NodeReport) { p.ModelServer.WaitingRequests = math.NaN() }, "requests"},
		{"energy per token negative", func(p *Pod, _ *NodeReport) { v := -1.0; p.EnergyPerOutputTokenJoules = &v }, "energy"},
		{"energy per token NaN", func(p *Pod, _ *NodeReport) { v := math.NaN(); p.EnergyPerOutputTokenJoules = &v }, "energy"},
		{"energy per token sound", func(p *Pod, _ *NodeReport) { v := 2.5; p.EnergyPerOutputTokenJoules = &v }, ""},
		{"KV above 1", func(p *Pod, _ *NodeReport) { v := 1.5; p.ModelServer.KvCacheUsage = &v }, "kv_cache"},
		{"KV negative", func(p *Pod, _ *NodeReport) { v := -0.1; p.ModelServer.KvCacheUsage = &v }, "kv_cache"},
		{"KV rounding slack", func(p *Pod, _ *NodeReport) { v := 1.0005; p.ModelServer.KvCacheUsage = &v }, ""},
		{"latency negative", func(p *Pod, _ *NodeReport) {
			p.ModelServer.Latency = &LatencyTotals{TtftCount: -3}
		}, "latency"},
		{"latency infinite", func(p *Pod, _ *NodeReport) {
			p.ModelServer.Latency = &LatencyTotals{TpotSecondsSum: math.Inf(1)}
		}, "latency"},
		{"stage total negative", func(p *Pod, _ *NodeReport) {
			p.ModelServer.Latency = &LatencyTotals{TtftCount: 3, PrefillCount: -1}
		}, "latency"},
		{"LoRA list at the cap", func(p *Pod, _ *NodeReport) {
			p.ModelServer.Lora = &LoRA{Running: names(MaxLoRAAdapters, "a"), Waiting: names(MaxLoRAAdapters, "b")}
		}, ""},
		{"LoRA list over the cap", func(p *Pod, _ *NodeReport) {
			p.ModelServer.Lora = &LoRA{Waiting: names(MaxLoRAAdapters+1, "a")}
		}, "lora"},
		{"LoRA name too long", func(p *Pod, _ *NodeReport) {
			p.ModelServer.Lora = &LoRA{Running: []string{strings.Repeat("x", MaxLoRANameBytes+1)}}
		}, "lora"},
		{"LoRA name empty", func(p *Pod, _ *NodeReport) {
			p.ModelServer.Lora = &LoRA{Running: []string{""}}
		}, "lora"},
		{"reading newer than the report", func(p *Pod, r *NodeReport) {
			p.ModelServer.SampleTimeUnixNano = r.SampleTimeUnixNano + 1
		}, "sample_time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sampleReport("node-a", 1)
			other := &Pod{Namespace: "llm", Name: "other", Ip: "10.0.0.9"}
			r.Pods = append(r.Pods, other)
			tc.mut(r.Pods[0], r)
			dropped, err := Validate(r)
			if err != nil {
				t.Fatalf("report refused: %v", err)
			}
			if tc.reason == "" {
				if len(dropped) != 0 || len(r.Pods) != 2 {
					t.Fatalf("dropped %v, %d pods left; want both kept", dropped, len(r.Pods))
				}
				return
			}
			if len(dropped) != 1 || dropped[0].Section != SectionPod || dropped[0].Reason != tc.reason {
				t.Fatalf("dropped %+v, want one pod section for %q", dropped, tc.reason)
			}
			if len(r.Pods) != 1 || r.Pods[0] != other {
				t.Fatalf("pods left %v, want only the other one", r.Pods)
			}
		})
	}
}

func TestValidateClearsBadGPUReadings(t *testing.T) {
	t.Parallel()
	r := sampleReport("node-a", 1)
	over, nan, inf := 1.7, math.NaN(), math.Inf(-1)
	g := r.Gpus[0]
	g.SmActive, g.Utilization, g.PowerWatts = &over, &nan, &inf
	g.Health = &GPUHealth{Lost: true}
	dropped, err := Validate(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 3 || g.SmActive != nil || g.Utilization != nil || g.PowerWatts != nil {
		t.Fatalf("dropped %+v; gpu %v", dropped, g)
	}
	if !g.GetHealth().GetLost() || len(r.Gpus) != 1 || len(r.Pods) != 1 {
		t.Fatal("the GPU's health or the pods went with its bad readings")
	}
}

func TestValidateRefusesReports(t *testing.T) {
	t.Parallel()
	xids := func(n int) []*XidCount {
		out := make([]*XidCount, n)
		for i := range out {
			out[i] = &XidCount{Code: 79, Count: 1}
		}
		return out
	}
	tests := []struct {
		name string
		mut  func(r *NodeReport)
	}{
		{"no node", func(r *NodeReport) { r.Node = "" }},
		{"sample time past 2^63", func(r *NodeReport) { r.SampleTimeUnixNano = 1 << 63 }},
		{"GPU without UUID", func(r *NodeReport) { r.Gpus[0].Uuid = "" }},
		{"too many Xid entries", func(r *NodeReport) {
			r.Gpus[0].Health = &GPUHealth{XidErrors: xids(MaxXidCodesPerGPU + 1)}
		}},
		{"too many processes", func(r *NodeReport) {
			r.Gpus[0].Processes = make([]*Process, MaxProcessesPerGPU+1)
		}},
		{"too many MIG slices", func(r *NodeReport) { r.Gpus[0].Mig = make([]*MIGSlice, MaxMIGPerGPU+1) }},
		{"MIG slice without UUID", func(r *NodeReport) { r.Gpus[0].Mig = []*MIGSlice{{MemoryTotalBytes: 1}} }},
		{"MIG slice using more than it has", func(r *NodeReport) {
			r.Gpus[0].Mig = []*MIGSlice{{Uuid: "MIG-a", MemoryTotalBytes: 1, MemoryUsedBytes: 2}}
		}},
		{"MIG slice SM activity above 1", func(r *NodeReport) {
			v := 1.5
			r.Gpus[0].Mig = []*MIGSlice{{Uuid: "MIG-a", SmActive: &v}}
		}},
		{"too many pods", func(r *NodeReport) { r.Pods = make([]*Pod, MaxPods+1) }},
		{"too many mesh pods", func(r *NodeReport) {
			r.Mesh = &MeshOverhead{Pods: make([]*PodMesh, MaxPods+1)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := sampleReport("node-a", 1)
			tc.mut(r)
			if _, err := Validate(r); !errors.Is(err, ErrInvalidReport) {
				t.Fatalf("err = %v, want ErrInvalidReport", err)
			}
		})
	}
}

// sampleReport is a sound report of one GPU and one pod.
func sampleReport(node string, seq uint64) *NodeReport {
	kv := 0.25
	return &NodeReport{
		Node: node, AgentInstance: "a", Sequence: seq,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Second),
		Gpus: []*GPU{{Index: 0, Uuid: "GPU-0", MemoryTotalBytes: 80 << 30}},
		Pods: []*Pod{{Namespace: "llm", Name: "vllm-0", Ip: "10.0.0.1", GpuUuids: []string{"GPU-0"},
			ModelServer: &ModelServer{Engine: "vllm", WaitingRequests: 2, KvCacheUsage: &kv}}},
	}
}
