package store

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func TestRefresherFollowsReportsAndPool(t *testing.T) {
	nodes := ingest.NewStore(3, nil)
	var targets atomic.Pointer[[]Target]
	targets.Store(&[]Target{NewTarget("llm", "vllm-0", "10.0.0.1", 8000)})
	poolChanged := make(chan struct{}, 1)
	r := NewRefresher(func() []Target { return *targets.Load() }, nodes, 5*time.Millisecond)
	if e := r.Current().Endpoints[0]; !e.Stale || e.Pod != nil {
		t.Fatalf("before any report: %+v", e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, poolChanged)

	nodes.Put(&telemetryv1.NodeReport{Node: "n1", AgentInstance: "a", Sequence: 1, IntervalNano: int64(time.Minute),
		SampleTimeUnixNano: uint64(time.Now().UnixNano()),
		Pods:               []*telemetryv1.Pod{{Name: "vllm-0", Ip: "10.0.0.1", ModelServer: &telemetryv1.ModelServer{WaitingRequests: 3}}}})
	waitView(t, r, func(v *View) bool {
		return !v.Endpoints[0].Stale && v.Endpoints[0].ModelServer().GetWaitingRequests() == 3
	})

	targets.Store(&[]Target{NewTarget("llm", "vllm-0", "10.0.0.1", 8000), NewTarget("llm", "vllm-1", "10.0.0.2", 8000)})
	poolChanged <- struct{}{}
	waitView(t, r, func(v *View) bool { return len(v.Endpoints) == 2 })
}

func waitView(t *testing.T, r *Refresher, ok func(*View) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(r.Current()) {
		if time.Now().After(deadline) {
			t.Fatal("view never reached the expected state")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
