package store_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/ingest"
	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func f(v float64) *float64 { return &v }

// migView is one H100 split into a full 1g.10gb slice and an idle 3g.40gb
// one, a pod on each, and a pod on a whole second GPU. The two MIG pods'
// model servers read the same.
func migView(now time.Time) *store.View {
	ms := func() *telemetryv1.ModelServer {
		return &telemetryv1.ModelServer{Engine: "vllm", SampleTimeUnixNano: uint64(now.UnixNano()), WaitingRequests: 1, KvCacheUsage: f(0.3)}
	}
	report := &telemetryv1.NodeReport{Node: "n1", SampleTimeUnixNano: uint64(now.UnixNano()),
		Gpus: []*telemetryv1.GPU{
			{Uuid: "GPU-a", Health: &telemetryv1.GPUHealth{}, MemoryTotalBytes: 80 << 30, MemoryUsedBytes: 14 << 30, MemoryFreeBytes: 66 << 30, SmActive: f(0.3),
				TemperatureCelsius: f(50), Mig: []*telemetryv1.MIGSlice{
					{Uuid: "MIG-full", GpuInstanceId: 7, MemoryTotalBytes: 10 << 30, MemoryUsedBytes: 9 << 30, MemoryFreeBytes: 1 << 30, SmActive: f(0.95)},
					{Uuid: "MIG-idle", GpuInstanceId: 1, MemoryTotalBytes: 40 << 30, MemoryUsedBytes: 5 << 30, MemoryFreeBytes: 35 << 30, SmActive: f(0.05)},
				}},
			{Uuid: "GPU-b", Health: &telemetryv1.GPUHealth{}, MemoryTotalBytes: 80 << 30, MemoryUsedBytes: 40 << 30, MemoryFreeBytes: 40 << 30, SmActive: f(0.5)},
		},
		Pods: []*telemetryv1.Pod{
			{Name: "full", Ip: "10.0.0.1", GpuUuids: []string{"GPU-a"}, MigUuids: []string{"MIG-full"}, ModelServer: ms()},
			{Name: "idle", Ip: "10.0.0.2", GpuUuids: []string{"GPU-a"}, MigUuids: []string{"MIG-idle"}, ModelServer: ms()},
			{Name: "whole", Ip: "10.0.0.3", GpuUuids: []string{"GPU-b"}, ModelServer: ms()},
		},
	}
	return store.Build([]store.Target{
		{Name: "full", IP: "10.0.0.1", Port: 8000}, {Name: "idle", IP: "10.0.0.2", Port: 8000}, {Name: "whole", IP: "10.0.0.3", Port: 8000},
	}, []ingest.NodeView{{Node: "n1", Received: now, Report: report}}, now)
}

// TestMIGPodsSeeTheirSlice: a pod on a MIG slice is joined with its
// slice's memory and SM activity, the GPU's health and temperature; a pod
// on a whole GPU with the GPU's readings.
func TestMIGPodsSeeTheirSlice(t *testing.T) {
	v := migView(time.Unix(1000, 0))
	tests := []struct {
		ep        int
		used, tot uint64
		sm        float64
	}{
		{0, 9 << 30, 10 << 30, 0.95},
		{1, 5 << 30, 40 << 30, 0.05},
		{2, 40 << 30, 80 << 30, 0.5},
	}
	for _, tc := range tests {
		e := v.Endpoints[tc.ep]
		t.Run(e.Name, func(t *testing.T) {
			if len(e.GPUs) != 1 {
				t.Fatalf("GPUs %v", e.GPUs)
			}
			g := e.GPUs[0]
			if g.GetMemoryUsedBytes() != tc.used || g.GetMemoryTotalBytes() != tc.tot || g.GetSmActive() != tc.sm {
				t.Errorf("GPU seen as used %d of %d, SM %v; want %d of %d, SM %v", g.GetMemoryUsedBytes(), g.GetMemoryTotalBytes(), g.GetSmActive(), tc.used, tc.tot, tc.sm)
			}
			if g.GetHealth() == nil || g.TemperatureCelsius == nil && tc.ep < 2 {
				t.Errorf("slice lost the GPU's health or temperature: %v", g)
			}
		})
	}
}

// TestPickerPrefersTheIdleSlice: two pods on slices of one GPU, their
// model servers alike; the pod on the idle slice takes most picks. Scored
// with the whole GPU's readings, as before, the two tie.
func TestPickerPrefersTheIdleSlice(t *testing.T) {
	now := time.Unix(1000, 0)
	v := migView(now)
	v.Endpoints = v.Endpoints[:2]
	p, err := scoring.New(scoring.DefaultConfig(), rand.NewPCG(1, 2), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	picks := map[string]int{}
	for range 100 {
		e, err := p.Pick(&scoring.Request{Model: "m"}, v, 1)
		if err != nil {
			t.Fatal(err)
		}
		picks[e[0].Name]++
	}
	// In-flight accounting spreads a burst between reports, so the idle
	// slice does not take all; with the whole GPU's readings the seeded
	// picks split 50/50.
	if picks["idle"] < 60 {
		t.Errorf("picks %v: want the idle slice's pod to take at least 60 of 100", picks)
	}
}
