//go:build cgo

package agent_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/picker/auth"
	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// TestReportReachesPicker runs the whole agent (simulated GPUs, the fake
// kubelet and runtime, a model server on loopback) with streaming on, and
// a real picker ingest server: the picker holds the node's report with
// its GPUs, the pod's GPU and the model server's queue, and keeps getting
// newer ones.
func TestReportReachesPicker(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("../collector/modelserver/testdata/vllm.prom")
	if err != nil {
		t.Fatal(err)
	}
	ms := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	t.Cleanup(ms.Close)
	_, port, _ := net.SplitHostPort(ms.Listener.Addr().String())

	store := ingest.NewStore(3, nil)
	srv := ingest.NewServer(store, auth.Insecure{}, "picker-0", testutil.Logger())
	g := grpc.NewServer(ingest.GRPCOptions(0)...)
	telemetryv1.RegisterTelemetryServiceServer(g, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)

	n := newNode(t)
	n.runtime.RemovePod(uidVLLM)
	n.runtime.AddSandbox(uidVLLM, "llm", "vllm-0", "127.0.0.1", true)
	n.runtime.SetPodMeta(uidVLLM, nil, map[string]string{"headroom.dev/metrics-port": port})
	o := n.options(time.Second)
	o.Interval = 200 * time.Millisecond
	mo := modelServerOptions(t, o)
	mo.Interval, mo.Timeout = 50*time.Millisecond, 2*time.Second
	o.Stream.Addresses, o.Stream.Insecure = ln.Addr().String(), true
	start(t, o)

	var r *telemetryv1.NodeReport
	testutil.Eventually(t, 20*time.Second, "a report with vllm-0's model server at the picker", func() bool {
		if v, ok := store.Node("node-a"); ok && v.Report != nil {
			r = v.Report
			p := podNamed(r, "vllm-0")
			return p != nil && p.GetModelServer().GetSampleTimeUnixNano() != 0 && len(p.GetGpuUuids()) > 0
		}
		return false
	})
	if len(r.GetGpus()) != 8 || r.GetIntervalNano() != int64(200*time.Millisecond) {
		t.Fatalf("report: %d GPUs, interval %d", len(r.GetGpus()), r.GetIntervalNano())
	}
	p := podNamed(r, "vllm-0")
	if p.GetUid() != uidVLLM || p.GetIp() != "127.0.0.1" || p.GetModelServer().GetWaitingRequests() != 5 || p.GetModelServer().GetKvCacheUsage() != 0.63 {
		t.Fatalf("vllm-0: %v", p)
	}
	first := r.GetSequence()
	testutil.Eventually(t, 20*time.Second, "newer reports", func() bool {
		v, _ := store.Node("node-a")
		return v.Report.GetSequence() > first+3 && v.Connected && !v.Stale
	})
}

func podNamed(r *telemetryv1.NodeReport, name string) *telemetryv1.Pod {
	for _, p := range r.GetPods() {
		if p.GetName() == name {
			return p
		}
	}
	return nil
}
