package report

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

// Whatever the snapshot holds, the agent builds a report within the
// contract (telemetryv1.Max*) with no value the picker would drop: an
// impossible model-server value is dropped or clamped here too (the
// model-server source already leaves them out; this is the last guard),
// and over-long lists are cut. The picker used to refuse such a report
// whole, so every pod of the node went stale.
func TestReportKeepsTheContract(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 0)
	s := node(1, 3, t0)
	names := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("adapter-%d", i)
		}
		return out
	}
	// One GPU with more processes and Xid codes than a report carries.
	g := &s.GPUs[0]
	for p := range telemetryv1.MaxProcessesPerGPU + 5 {
		g.Processes = append(g.Processes, snapshot.Process{PID: uint32(100_000 + p), UsedMemory: uint64(p), MIGInstance: -1})
	}
	g.Processes[0].UsedMemory = 70 << 30 // the biggest must stay
	g.XidErrors = map[uint64]uint64{}
	for code := range uint64(telemetryv1.MaxXidCodesPerGPU + 10) {
		g.XidErrors[code] = 1
	}
	pod := &s.Attribution.Pods[0]
	pod.ModelServer.SampleTime = t0
	pod.ModelServer.Stats = snapshot.ModelServerStats{
		Waiting: -1, Running: math.Inf(1), KVCacheUsage: 1.7, HasKVCacheUsage: true,
		LoRA:    &snapshot.LoRAState{Running: names(telemetryv1.MaxLoRAAdapters + 1), Waiting: []string{"ok", string(make([]byte, telemetryv1.MaxLoRANameBytes+1))}},
		Latency: &snapshot.LatencyTotals{TTFTSum: math.NaN(), TTFTCount: 3},
	}
	r := Build(s, nil, Meta{Instance: "i", Sequence: 1, Interval: time.Second})
	dropped, err := telemetryv1.Validate(r)
	if err != nil || len(dropped) > 0 {
		t.Fatalf("the picker refuses the report (%v) or drops parts of it (%+v)", err, dropped)
	}
	ms := r.GetPods()[0].GetModelServer()
	if ms.GetWaitingRequests() != 0 || ms.GetRunningRequests() != 0 || ms.KvCacheUsage != nil || ms.GetLatency() != nil {
		t.Errorf("model server %v: want the impossible values cleared", ms)
	}
	if l := ms.GetLora(); len(l.GetRunning()) != telemetryv1.MaxLoRAAdapters || !slices.Equal(l.GetWaiting(), []string{"ok"}) {
		t.Errorf("LoRA running %d, waiting %q", len(l.GetRunning()), l.GetWaiting())
	}
	procs := r.GetGpus()[0].GetProcesses()
	if len(procs) != telemetryv1.MaxProcessesPerGPU || !slices.ContainsFunc(procs, func(p *telemetryv1.Process) bool { return p.GetUsedMemoryBytes() == 70<<30 }) {
		t.Errorf("%d processes, want %d with the biggest kept", len(procs), telemetryv1.MaxProcessesPerGPU)
	}
	xids := r.GetGpus()[0].GetHealth().GetXidErrors()
	if len(xids) != telemetryv1.MaxXidCodesPerGPU || xids[0].GetCode() != 0 {
		t.Errorf("%d Xid entries from code %d, want %d from the lowest", len(xids), xids[0].GetCode(), telemetryv1.MaxXidCodesPerGPU)
	}
}
