package report

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

func TestMeshSection(t *testing.T) {
	t.Parallel()
	s := node(2, 1, time.Unix(1700000000, 0))
	// Pod 1 goes ambient: no sidecar, traffic through ztunnel.
	s.Attribution.Pods[1].Containers = s.Attribution.Pods[1].Containers[:1]
	s.Mesh = &snapshot.Mesh{Ztunnel: &snapshot.Ztunnel{
		Present: true, Memory: &snapshot.ContainerMemory{WorkingSet: 40 << 20, Anon: 30 << 20, CPUSeconds: 6},
		Traffic: &snapshot.ZtunnelTraffic{Flows: []snapshot.ZtunnelFlow{
			{Namespace: "llm", Pod: "vllm-1", UID: "uid-1", Leg: snapshot.LegHBONE, BytesSent: 1000, BytesReceived: 2000, Opened: 5, Closed: 2},
			{Leg: snapshot.LegControl, BytesSent: 10},
		}},
	}}
	got := Build(s, nil, Meta{}).GetMesh()
	want := &telemetryv1.MeshOverhead{
		SidecarMemoryBytes: 60 << 20, SidecarGpuPods: 1, SidecarMemoryPerGpuPodBytes: 60 << 20,
		AmbientGpuPods: 1, ZtunnelMemoryPerGpuPodBytes: 40 << 20,
		ZtunnelPresent: true, ZtunnelMemoryBytes: 40 << 20, ZtunnelMemoryAnonBytes: 30 << 20, ZtunnelCpuSeconds: 6,
		ZtunnelEbpf: true, ZtunnelBytesSent: 1010, ZtunnelBytesReceived: 2000, ZtunnelConnectionsActive: 3,
		Pods: []*telemetryv1.PodMesh{
			{PodUid: "uid-0", SidecarMemoryBytes: 60 << 20},
			{PodUid: "uid-1", ZtunnelBytesSent: 1000, ZtunnelBytesReceived: 2000, ZtunnelConnectionsActive: 3, ZtunnelEstimatedCpuSeconds: 6},
		},
	}
	if !proto.Equal(got, want) {
		t.Fatalf("mesh:\n got %v\nwant %v", got, want)
	}
}
