package store_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/ingest"
	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// The measurement, as a test: six healthy pods, three on each of
// two nodes, each reported by its own node's agent; a third node's agent
// claims the first pod's IP with a "full" model server (queue 50, KV
// 0.99). That used to take the first pod's share of requests from about
// one sixth to 0 %. Whether the pool names each pod's node (an
// InferencePool always does) or not (static endpoints), the claim from
// another node must not move it.
func TestAnotherNodeCannotRepelAPod(t *testing.T) {
	t.Parallel()
	now := time.Now()
	kv := func(v float64) *float64 { return &v }
	var honest []ingest.NodeView
	var pods [6]struct{ node, ip string }
	for n := range 2 {
		node := fmt.Sprintf("gpu-node-%d", n+1)
		r := &telemetryv1.NodeReport{Node: node, SampleTimeUnixNano: uint64(now.UnixNano())}
		for i := range 3 {
			k := 3*n + i
			pods[k].node, pods[k].ip = node, fmt.Sprintf("10.0.0.%d", k+1)
			r.Pods = append(r.Pods, &telemetryv1.Pod{Namespace: "llm", Name: fmt.Sprintf("vllm-%d", k), Uid: fmt.Sprintf("uid-%d", k), Ip: pods[k].ip,
				ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 1, RunningRequests: 4, KvCacheUsage: kv(0.3)}})
		}
		honest = append(honest, ingest.NodeView{Node: node, Report: r, Received: now, Connected: true, TTL: 3 * time.Second})
	}
	// "a-rogue" sorts first, so a join that takes the first claim takes it.
	rogue := ingest.NodeView{Node: "a-rogue", Received: now, Connected: true, TTL: 3 * time.Second, Report: &telemetryv1.NodeReport{
		Node: "a-rogue", SampleTimeUnixNano: uint64(now.UnixNano()),
		Pods: []*telemetryv1.Pod{{Namespace: "llm", Name: "vllm-0", Uid: "uid-0", Ip: pods[0].ip,
			ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 50, RunningRequests: 64, KvCacheUsage: kv(0.99)}}},
	}}
	for _, named := range []bool{false, true} {
		t.Run(fmt.Sprintf("pool names nodes %v", named), func(t *testing.T) {
			t.Parallel()
			var targets []store.Target
			for k, p := range pods {
				tg := store.NewTarget("llm", fmt.Sprintf("vllm-%d", k), p.ip, 8000)
				if named {
					tg.Node, tg.UID = p.node, fmt.Sprintf("uid-%d", k)
				}
				targets = append(targets, tg)
			}
			quiet := share(t, store.Build(targets, honest, now), pods[0].ip+":8000")
			attacked := share(t, store.Build(targets, append([]ingest.NodeView{rogue}, honest...), now), pods[0].ip+":8000")
			t.Logf("first pod's share: %.0f %% quiet, %.0f %% with another node claiming its IP", 100*quiet, 100*attacked)
			if quiet < 0.08 || attacked < 0.08 {
				t.Fatalf("share %.2f quiet, %.2f attacked; want about 1/6 both times", quiet, attacked)
			}
		})
	}
}

// share routes 1,200 requests (distinct prompts, each finished before the
// next) over v and returns the fraction sent to addr.
func share(t *testing.T, v *store.View, addr string) float64 {
	t.Helper()
	p, err := scoring.New(scoring.DefaultConfig(), rand.NewPCG(7, 11), nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1200
	hits := 0
	for i := range n {
		d, err := p.Decide(&scoring.Request{Model: "m", PromptPrefix: fmt.Appendf(nil, "prompt %d", i)}, v, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Endpoints[0].Address == addr {
			hits++
		}
		p.Finished(d.Endpoints[0].Address)
	}
	return float64(hits) / n
}
