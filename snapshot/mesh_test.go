package snapshot

import "testing"

func TestSummarizeMesh(t *testing.T) {
	t.Parallel()
	side := func(ws uint64) Container {
		return Container{Name: "istio-proxy", Sidecar: true, Memory: &ContainerMemory{WorkingSet: ws}}
	}
	s := &Snapshot{
		Attribution: &Attribution{Pods: []Pod{
			{UID: "a", Containers: []Container{{Name: "vllm"}, side(100)}},
			{UID: "b", Containers: []Container{{Name: "vllm"}, side(300)}},
			{UID: "c", Containers: []Container{{Name: "vllm"}}},
			{UID: "d", Containers: []Container{{Name: "vllm"}}},
		}},
		Mesh: &Mesh{Ztunnel: &Ztunnel{Present: true, Memory: &ContainerMemory{WorkingSet: 50}}},
	}
	got := SummarizeMesh(s)
	want := MeshSummary{SidecarPods: 2, SidecarMemory: 400, SidecarPerPod: 200, AmbientPods: 2, ZtunnelMemory: 50, ZtunnelPerPod: 25}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	s.Mesh.Ztunnel.Present = false
	if got := SummarizeMesh(s); got.AmbientPods != 0 || got.ZtunnelMemory != 0 {
		t.Errorf("no ztunnel: %+v", got)
	}
}

func TestEstimatedPodCPU(t *testing.T) {
	t.Parallel()
	z := &Ztunnel{Memory: &ContainerMemory{CPUSeconds: 10}, Traffic: &ZtunnelTraffic{Flows: []ZtunnelFlow{
		{Namespace: "n", Pod: "a", UID: "a", Leg: LegApp, BytesSent: 100, BytesReceived: 200},
		{Namespace: "n", Pod: "a", UID: "a", Leg: LegHBONE, BytesSent: 300, BytesReceived: 200},
		{Namespace: "n", Pod: "b", UID: "b", Leg: LegHBONE, BytesSent: 200},
		{Leg: LegControl, BytesSent: 1e9}, // control traffic is not a pod's
		{Leg: LegApp, BytesReceived: 1e9}, // nor an unknown namespace's
	}}}
	got := z.EstimatedPodCPU()
	if len(got) != 2 || got[0].Pod != "a" || got[0].CPUSeconds != 8 || got[1].Pod != "b" || got[1].CPUSeconds != 2 {
		t.Fatalf("got %+v", got)
	}
	if (&Ztunnel{}).EstimatedPodCPU() != nil {
		t.Error("estimate without readings")
	}
}
