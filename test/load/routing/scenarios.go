//go:build cgo

package main

import (
	"fmt"
	"strings"

	"github.com/headroom-dev/headroom/sim/cluster"
)

// scenario is one pool and what happens to it.
type scenario struct {
	name, desc string
	nodes      []cluster.NodeSpec
	// setup runs once the cluster routes, before any load.
	setup func(c *cluster.Cluster)
	// loads are the offered loads, as fractions of the pool's capacity.
	loads []float64
	// burst, when > 0, sends this many requests at once instead of a
	// Poisson stream.
	burst int
}

func h100s(n int) cluster.NodeSpec {
	return cluster.NodeSpec{System: "dgxh100", Server: "h100", GPUs: n}
}
func a100s(n int) cluster.NodeSpec {
	return cluster.NodeSpec{System: "dgxa100", Server: "a100", GPUs: n}
}

// scenarios are the benchmark's pools. Each has eight GPUs so that the
// whole system stays well inside two CPU cores at full load.
func scenarios(loads []float64, hetLoads []float64) []scenario {
	return []scenario{
		{name: "homogeneous", desc: "8 H100", nodes: []cluster.NodeSpec{h100s(8)}, loads: loads},
		{name: "heterogeneous", desc: "4 H100 + 4 A100 (A100 about 1.7x slower)", nodes: []cluster.NodeSpec{h100s(4), a100s(4)}, loads: hetLoads},
		{name: "throttled", desc: "8 H100, one throttled to half speed (NVML reports HW slowdown)", nodes: []cluster.NodeSpec{h100s(8)}, loads: loads,
			setup: func(c *cluster.Cluster) { c.Nodes[0].Servers[0].Throttle(2) }},
		{name: "co-tenant", desc: "8 H100, one shared with a process taking half its SMs and 20 GiB", nodes: []cluster.NodeSpec{h100s(8)}, loads: loads,
			setup: func(c *cluster.Cluster) { c.Nodes[0].Servers[0].CoTenant(0.5, 20<<30) }},
		{name: "burst", desc: "8 H100, 100 requests at once", nodes: []cluster.NodeSpec{h100s(8)}, burst: 100, loads: []float64{0}},
		{name: "stale", desc: "4 H100 + 4 A100, the A100 node's agent stopped (its telemetry goes stale)", nodes: []cluster.NodeSpec{h100s(4), a100s(4)}, loads: loads,
			setup: func(c *cluster.Cluster) { c.Nodes[1].StopAgent() }},
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
