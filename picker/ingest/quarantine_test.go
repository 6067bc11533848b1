package ingest

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/picker/auth"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// One model server serving an impossible value (a queue of -1, a KV usage
// above 1) costs only its own pod section: the report is accepted, the
// node's other pods and its GPUs (lost and Xid signals included) count,
// and the drop is counted by reason. It used to refuse the whole report,
// end the stream and leave every pod of the node stale.
func TestImpossibleValueDropsOnlyItsPod(t *testing.T) {
	t.Parallel()
	r := report("node-a", 1)
	good := r.Pods[0]
	kvHigh, inf := 1.5, math.Inf(1)
	r.Pods = []*telemetryv1.Pod{
		{Namespace: "llm", Name: "negative-queue", Ip: "10.0.0.2", ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: -1}},
		good,
		{Namespace: "llm", Name: "kv-above-one", Ip: "10.0.0.3", ModelServer: &telemetryv1.ModelServer{Engine: "vllm", KvCacheUsage: &kvHigh}},
		{Namespace: "llm", Name: "infinite", Ip: "10.0.0.4", ModelServer: &telemetryv1.ModelServer{Engine: "vllm", RunningRequests: inf}},
	}
	r.Gpus = append(r.Gpus, &telemetryv1.GPU{Index: 1, Uuid: "GPU-1", Health: &telemetryv1.GPUHealth{
		Lost: true, XidErrors: []*telemetryv1.XidCount{{Code: 79, Count: 1}}}})

	srv, addr := serve(t, auth.Insecure{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := exchange(ctx, dial(t, addr), r); err != nil {
		t.Fatalf("report refused: %v", err)
	}
	v, ok := srv.Store().Node("node-a")
	if !ok || v.Report == nil {
		t.Fatal("report not stored")
	}
	if pods := v.Report.GetPods(); len(pods) != 1 || pods[0].GetName() != good.GetName() {
		t.Fatalf("stored pods %v, want only %s", pods, good.GetName())
	}
	if gpus := v.Report.GetGpus(); len(gpus) != 2 || !gpus[1].GetHealth().GetLost() || len(gpus[1].GetHealth().GetXidErrors()) != 1 {
		t.Fatalf("stored GPUs %v, want both with GPU-1 lost and its Xid", gpus)
	}
	want := `
# HELP headroom_picker_report_sections_dropped_total Parts of accepted reports left out for impossible values, by section (pod, gpu_reading) and reason; the rest of each report counts.
# TYPE headroom_picker_report_sections_dropped_total counter
headroom_picker_report_sections_dropped_total{reason="kv_cache",section="pod"} 1
headroom_picker_report_sections_dropped_total{reason="requests",section="pod"} 2
`
	if err := testutil.CollectAndCompare(srv.Metrics(), strings.NewReader(want), "headroom_picker_report_sections_dropped_total"); err != nil {
		t.Fatal(err)
	}
}
