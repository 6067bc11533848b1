//go:build cgo

package demo

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/gateway"
	"github.com/headroom-dev/headroom/sim/loadgen"
	"github.com/headroom-dev/headroom/snapshot"
)

// view draws the running system: the load's progress, each GPU's server
// and what the agent sees of it, and where the gateway sent requests.
type view struct {
	out    io.Writer
	tty    bool
	c      *cluster.Cluster
	g      *loadgen.Generator
	policy string
	rate   float64
	total  time.Duration
	start  time.Time
	drawn  int
	n      counters
}

func (v *view) draw() {
	v.drawn++
	if !v.tty && v.drawn%5 != 1 { // plain output: every fifth frame
		return
	}
	if v.tty {
		fmt.Fprint(v.out, "\033[H\033[2J")
	}
	how := "the gateway picks itself"
	if v.policy == cluster.PolicyHeadroom {
		how = fmt.Sprintf("the gateway asks %d headroom-picker replicas over ext_proc", len(v.c.Pickers))
	}
	progress := fmt.Sprintf("%s of %s", time.Since(v.start).Truncate(time.Second), v.total)
	if time.Since(v.start) > v.total {
		progress = "load sent, waiting for the last responses"
	}
	fmt.Fprintf(v.out, "headroom demo: policy %s (%s), %s, %.1f requests/s offered to %s\n",
		v.policy, how, progress, v.rate, v.c.URL)
	fmt.Fprintf(v.out, "requests: done %d, in flight %d, failed %d\n", v.n.done.Load(), v.g.InFlight(), v.n.failed.Load())
	gs := v.c.Gateway.Stats()
	for _, n := range v.c.Nodes {
		v.node(n, gs.PerEndpoint)
	}
	v.pickers()
}

func (v *view) node(n *cluster.Node, routed map[string]gateway.EndpointStats) {
	agent := "agent stopped"
	if n.Agent != nil {
		agent = fmt.Sprintf("agent /metrics at http://%s/metrics", n.Agent.Addr())
	}
	fmt.Fprintf(v.out, "\n%s (%s; %s)\n", n.Name, n.Servers[0].Profile.Name, agent)
	snap := n.Agent.Latest() // the last sample, also once the agent stopped
	tw := tabwriter.NewWriter(v.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "GPU\tserver\tspeed\trunning\twaiting\tKV cache\tbusy (agent)\t\trouted\tin flight\t")
	for _, s := range n.Servers {
		st := s.Stats()
		sm, smBar := busy(snap, s.GPU)
		speed := "1.0x"
		if f := s.Slowdown(); f > 1 {
			speed = fmt.Sprintf("1/%.1fx", f)
		}
		e := routed[s.Addr]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d/%d\t%d\t%3.0f%%\t%s\t%s\t%d\t%d\t\n", s.GPU, s.Name, speed,
			st.Running, s.Profile.MaxRunning, st.Waiting, 100*st.KVUsage, sm, smBar, e.Routed, e.InFlight)
	}
	_ = tw.Flush()
}

// pickers says what each replica holds of each node.
func (v *view) pickers() {
	for _, p := range v.c.Pickers {
		var parts []string
		for _, n := range v.c.Nodes {
			nv, ok := p.Store().Node(n.Name)
			switch {
			case !ok || nv.Report == nil:
				parts = append(parts, n.Name+" none")
			case nv.Stale:
				parts = append(parts, fmt.Sprintf("%s STALE (%s old)", n.Name, nv.Age.Round(100*time.Millisecond)))
			default:
				parts = append(parts, fmt.Sprintf("%s #%d %s old", n.Name, nv.Report.GetSequence(), nv.Age.Round(time.Millisecond)))
			}
		}
		fmt.Fprintf(v.out, "\n%s telemetry: %s", p.Name, strings.Join(parts, "; "))
	}
	fmt.Fprintln(v.out)
}

func bar(v float64) string {
	n := min(max(int(v*10+0.5), 0), 10)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 10-n) + "]"
}

// busy is what the agent saw of a GPU's load: GPM's SM activity where
// the GPU has it (Hopper and later), else NVML's utilisation.
func busy(snap *snapshot.Snapshot, gpu int) (string, string) {
	if snap == nil || gpu >= len(snap.GPUs) {
		return "n/a", ""
	}
	g := snap.GPUs[gpu]
	switch {
	case g.SMActive != nil:
		return fmt.Sprintf("SM %3.0f%%", 100**g.SMActive), bar(*g.SMActive)
	case g.Utilization != nil:
		return fmt.Sprintf("util %3.0f%%", 100*g.Utilization.GPU), bar(g.Utilization.GPU)
	}
	return "n/a", ""
}
