//go:build cgo

package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/sim/gpusim"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, bad := range []func(*Options){
		func(o *Options) { o.Nodes = nil },
		func(o *Options) { o.Nodes = []NodeSpec{{System: "dgxh100", Server: "v100"}} },
		func(o *Options) { o.Nodes = []NodeSpec{{System: "dgxh100", Server: "h100", GPUs: 9}} },
		func(o *Options) { o.Policy = "fastest" },
		func(o *Options) { o.Pickers = 0 },
		func(o *Options) { o.AgentInterval = time.Millisecond },
	} {
		o := DefaultOptions()
		bad(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%+v validated", o)
		}
	}
}

// TestScenarioControls starts a one-node baseline cluster (no pickers)
// and checks what Throttle, CoTenant and StopAgent do to the servers, the
// simulated GPUs and the agent.
func TestScenarioControls(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Nodes, o.Policy = []NodeSpec{{System: "dgxh100", Server: "h100", GPUs: 2}}, PolicyRoundRobin
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if eps := c.Endpoints(); len(eps) != 2 || !strings.HasPrefix(eps[0], "127.0.1.10:") || !strings.HasPrefix(eps[1], "127.0.1.11:") {
		t.Fatalf("endpoints %v, want 127.0.1.10:* and 127.0.1.11:*", eps)
	}
	base := c.Capacity(200, 100)
	s0, s1 := c.Servers()[0], c.Servers()[1]
	s0.Throttle(2)
	if s0.Slowdown() != 2 || c.Capacity(200, 100) >= base {
		t.Errorf("throttled: slowdown %v, capacity %v (was %v)", s0.Slowdown(), c.Capacity(200, 100), base)
	}
	if r, _ := s0.Node.GPUs.Devices[0].GetCurrentClocksEventReasons(); r&gpusim.ThrottleHWSlowdown == 0 {
		t.Errorf("throttled GPU reports %#x, want the HW slowdown bit", r)
	}
	s0.Throttle(1)
	if r, _ := s0.Node.GPUs.Devices[0].GetCurrentClocksEventReasons(); r&gpusim.ThrottleHWSlowdown != 0 || s0.Slowdown() != 1 {
		t.Errorf("cleared: reasons %#x, slowdown %v", r, s0.Slowdown())
	}
	s1.CoTenant(0.5, 20<<30)
	procs := s1.Node.GPUs.Processes(1)
	if s1.Slowdown() != 2 || len(procs) != 2 || procs[1].VRAM != 20<<30 {
		t.Errorf("co-tenant: slowdown %v, processes %+v", s1.Slowdown(), procs)
	}
	s1.CoTenant(0, 0)
	if len(s1.Node.GPUs.Processes(1)) != 1 || s1.Slowdown() != 1 {
		t.Errorf("co-tenant removed: processes %+v, slowdown %v", s1.Node.GPUs.Processes(1), s1.Slowdown())
	}
	// The agent sees both pods' model servers before it is stopped.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if servedPods(c.Nodes[0]) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent never read both model servers")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.Nodes[0].StopAgent()
	c.Nodes[0].StopAgent() // twice is fine
}

// servedPods counts the pods whose model server the agent has read.
func servedPods(n *Node) int {
	snap := n.Agent.Latest()
	if snap == nil || snap.Attribution == nil {
		return 0
	}
	k := 0
	for _, p := range snap.Attribution.Pods {
		if p.ModelServer != nil && !p.ModelServer.SampleTime.IsZero() {
			k++
		}
	}
	return k
}
