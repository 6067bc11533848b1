//go:build cgo

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// scenario is one pool and what happens to it.
type scenario struct {
	name, desc string
	nodes      []cluster.NodeSpec
	// setup runs once the cluster routes, before any load.
	setup func(c *cluster.Cluster)
	// during starts when the load does and returns what stops it.
	during func(o options, c *cluster.Cluster) (stop func())
	// het makes the scenario run at the -het-loads, not the -loads.
	het bool
	// burst, when > 0, sends this many requests at once instead of a
	// Poisson stream.
	burst int
	// modelsimOnly scenarios change the in-process servers (throttle,
	// co-tenant), which only sim/modelsim can.
	modelsimOnly bool
	// conv, when on, makes the load shared-prefix.
	conv loadgen.Conversations
	// adapters, when set, are LoRA adapters every server serves (two
	// per batch) and three requests in four name one.
	adapters []string
}

func (s scenario) loadsFor(o options) []float64 {
	switch {
	case s.burst > 0:
		return []float64{0}
	case s.het:
		return o.hetLoads
	}
	return o.loads
}

func (s scenario) sims() []string {
	if s.modelsimOnly {
		return []string{simModelsim}
	}
	return []string{simModelsim, simLLMD}
}

func h100s(n int) cluster.NodeSpec {
	return cluster.NodeSpec{System: "dgxh100", Server: "h100", GPUs: n}
}

// slow is a node of the heterogeneous pool's slow class: 2.5× slower per
// token with half the batch slots (the modelsim profile "slow", and the
// llm-d-inference-sim class made from it).
func slow(n int) cluster.NodeSpec {
	return cluster.NodeSpec{System: "dgxa100", Server: "slow", GPUs: n}
}

// hetPool is six fast pods on one node and two slow ones on another: the
// slow pods hold about 7 % of the capacity.
func hetPool() []cluster.NodeSpec { return []cluster.NodeSpec{h100s(6), slow(2)} }

// loraNames are the lora scenario's adapters.
func loraNames() []string {
	return []string{"sql", "chat", "code", "legal", "med", "fin", "tr-de", "tr-fr"}
}

// scenarios are the benchmark's pools. Each has eight GPUs so that the
// whole system stays well inside two CPU cores at full load.
func scenarios(o options) []scenario {
	return []scenario{
		{name: "homogeneous", desc: "8 H100", nodes: []cluster.NodeSpec{h100s(8)}},
		{name: "heterogeneous", desc: "6 fast + 2 slow (2.5× slower per token, half the batch slots)", nodes: hetPool(), het: true},
		{name: "throttled", desc: "8 H100, one throttled to half speed (NVML reports HW slowdown)", nodes: []cluster.NodeSpec{h100s(8)}, modelsimOnly: true,
			setup: func(c *cluster.Cluster) { c.Nodes[0].Servers[0].Throttle(2) }},
		{name: "co-tenant", desc: "8 H100, one shared with a process taking half its SMs and 20 GiB", nodes: []cluster.NodeSpec{h100s(8)}, modelsimOnly: true,
			setup: func(c *cluster.Cluster) { c.Nodes[0].Servers[0].CoTenant(0.5, 20<<30) }},
		{name: "burst", desc: "8 H100, 100 requests at once", nodes: []cluster.NodeSpec{h100s(8)}, burst: 100},
		{name: "stale", desc: "6 fast + 2 slow, the slow node's agent stopped before the load (its telemetry goes stale)", nodes: hetPool(),
			setup: func(c *cluster.Cluster) { c.Nodes[1].StopAgent() }},
		{name: "shared-prefix", desc: "8 H100, 8 system prompts of 1,024 tokens, conversations of 4 turns on average",
			nodes: []cluster.NodeSpec{h100s(8)}, conv: loadgen.Conversations{SystemPrompts: 8, SystemTokens: 1024, Turns: 4}},
		{name: "lora", desc: "8 H100 serving 8 LoRA adapters, 2 per batch; 3 requests in 4 name one",
			nodes: []cluster.NodeSpec{{System: "dgxh100", Server: "h100", GPUs: 8, LoRAs: loraNames(), MaxLoRAs: 2}}, adapters: loraNames()},
		{name: "agent-killed", desc: fmt.Sprintf("6 fast + 2 slow, the slow node's agent killed %s into the load", o.killAt), nodes: hetPool(),
			during: killAgentAt(1)},
	}
}

// killAgentAt stops node i's agent at once, without a goodbye, -kill-at
// after the load starts: the pickers' stream from it ends and its last
// report ages out, as after a SIGKILL (the picker's scoring reads a
// report's age, not the stream's state).
func killAgentAt(i int) func(o options, c *cluster.Cluster) func() {
	return func(o options, c *cluster.Cluster) func() {
		t := time.AfterFunc(o.killAt, c.Nodes[i].StopAgent)
		return func() { t.Stop() }
	}
}

// pick selects scenarios by name ("all" or a comma-separated list).
func pick(all []scenario, names string) ([]scenario, error) {
	if names == "all" {
		return all, nil
	}
	var out []scenario
	for _, n := range strings.Split(names, ",") {
		found := false
		for _, s := range all {
			if s.name == strings.TrimSpace(n) {
				out, found = append(out, s), true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q", n)
		}
	}
	return out, nil
}
