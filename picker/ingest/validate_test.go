package ingest

import (
	"errors"
	"math"
	"strings"
	"testing"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
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
		mut    func(p *telemetryv1.Pod, r *telemetryv1.NodeReport)
		reason string // "": the pod is kept
	}{
		{"sound", func(*telemetryv1.Pod, *telemetryv1.NodeReport) {}, ""},
		{"no model server", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.ModelServer = nil }, ""},
		{"host network: no IP", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Ip = "" }, ""},
		{"IPv6", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Ip = "fd00::1" }, ""},
		{"no name", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Name = "" }, "name"},
		{"long namespace", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Namespace = strings.Repeat("n", 254) }, "name"},
		{"long uid", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Uid = strings.Repeat("u", 254) }, "name"},
		{"IP not an IP", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Ip = "vllm-0.llm" }, "ip"},
		{"IP with a zone", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Ip = "fe80::1%eth0" }, "ip"},
		{"port beyond 65535", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.Port = 70000 }, "port"},
		{"too many GPUs", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.GpuUuids = names(telemetryv1.MaxGPUsPerPod+1, "GPU-0")
		}, "gpus"},
		{"negative queue", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.ModelServer.WaitingRequests = -1 }, "requests"},
		{"infinite running", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.RunningRequests = math.Inf(1)
		}, "requests"},
		{"NaN queue", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { p.ModelServer.WaitingRequests = math.NaN() }, "requests"},
		{"KV above 1", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { v := 1.5; p.ModelServer.KvCacheUsage = &v }, "kv_cache"},
		{"KV negative", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { v := -0.1; p.ModelServer.KvCacheUsage = &v }, "kv_cache"},
		{"KV rounding slack", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) { v := 1.0005; p.ModelServer.KvCacheUsage = &v }, ""},
		{"latency negative", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.Latency = &telemetryv1.LatencyTotals{TtftCount: -3}
		}, "latency"},
		{"latency infinite", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.Latency = &telemetryv1.LatencyTotals{TpotSecondsSum: math.Inf(1)}
		}, "latency"},
		{"stage total negative", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.Latency = &telemetryv1.LatencyTotals{TtftCount: 3, PrefillCount: -1}
		}, "latency"},
		{"LoRA list at the cap", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.Lora = &telemetryv1.LoRA{Running: names(telemetryv1.MaxLoRAAdapters, "a"), Waiting: names(telemetryv1.MaxLoRAAdapters, "b")}
		}, ""},
		{"LoRA list over the cap", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.Lora = &telemetryv1.LoRA{Waiting: names(telemetryv1.MaxLoRAAdapters+1, "a")}
		}, "lora"},
		{"LoRA name too long", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.Lora = &telemetryv1.LoRA{Running: []string{strings.Repeat("x", telemetryv1.MaxLoRANameBytes+1)}}
		}, "lora"},
		{"LoRA name empty", func(p *telemetryv1.Pod, _ *telemetryv1.NodeReport) {
			p.ModelServer.Lora = &telemetryv1.LoRA{Running: []string{""}}
		}, "lora"},
		{"reading newer than the report", func(p *telemetryv1.Pod, r *telemetryv1.NodeReport) {
			p.ModelServer.SampleTimeUnixNano = r.SampleTimeUnixNano + 1
		}, "sample_time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := report("node-a", 1)
			other := &telemetryv1.Pod{Namespace: "llm", Name: "other", Ip: "10.0.0.9"}
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
	r := report("node-a", 1)
	over, nan, inf := 1.7, math.NaN(), math.Inf(-1)
	g := r.Gpus[0]
	g.SmActive, g.Utilization, g.PowerWatts = &over, &nan, &inf
	g.Health = &telemetryv1.GPUHealth{Lost: true}
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
	xids := func(n int) []*telemetryv1.XidCount {
		out := make([]*telemetryv1.XidCount, n)
		for i := range out {
			out[i] = &telemetryv1.XidCount{Code: 79, Count: 1}
		}
		return out
	}
	tests := []struct {
		name string
		mut  func(r *telemetryv1.NodeReport)
	}{
		{"no node", func(r *telemetryv1.NodeReport) { r.Node = "" }},
		{"sample time past 2^63", func(r *telemetryv1.NodeReport) { r.SampleTimeUnixNano = 1 << 63 }},
		{"GPU without UUID", func(r *telemetryv1.NodeReport) { r.Gpus[0].Uuid = "" }},
		{"too many Xid entries", func(r *telemetryv1.NodeReport) {
			r.Gpus[0].Health = &telemetryv1.GPUHealth{XidErrors: xids(telemetryv1.MaxXidCodesPerGPU + 1)}
		}},
		{"too many processes", func(r *telemetryv1.NodeReport) {
			r.Gpus[0].Processes = make([]*telemetryv1.Process, telemetryv1.MaxProcessesPerGPU+1)
		}},
		{"too many pods", func(r *telemetryv1.NodeReport) { r.Pods = make([]*telemetryv1.Pod, telemetryv1.MaxPods+1) }},
		{"too many mesh pods", func(r *telemetryv1.NodeReport) {
			r.Mesh = &telemetryv1.MeshOverhead{Pods: make([]*telemetryv1.PodMesh, telemetryv1.MaxPods+1)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := report("node-a", 1)
			tc.mut(r)
			if _, err := Validate(r); !errors.Is(err, ErrInvalidReport) {
				t.Fatalf("err = %v, want ErrInvalidReport", err)
			}
		})
	}
}
