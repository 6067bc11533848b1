//go:build cgo

package demo

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/headroom-dev/headroom/agent/snapshot"
)

// view draws the agent's latest snapshot as a table.
type view struct {
	out   io.Writer
	tty   bool
	addr  string
	total time.Duration
	start time.Time
	drawn int
	// picker describes what the picker holds; nil: no picker.
	picker func() string
}

func (v *view) draw(s *snapshot.Snapshot) {
	if s == nil {
		return
	}
	if !v.tty && v.drawn%5 != 0 { // plain output: every fifth frame
		v.drawn++
		return
	}
	v.drawn++
	if v.tty {
		fmt.Fprint(v.out, "\033[H\033[2J")
	}
	elapsed := time.Since(v.start).Truncate(time.Second)
	of := "until Ctrl-C"
	if v.total > 0 {
		of = "of " + v.total.String()
	}
	fmt.Fprintf(v.out, "headroom demo: node %s, %s elapsed %s; scrape http://%s/metrics\n\n", s.Node, elapsed, of, v.addr)
	v.table(s)
}

func (v *view) table(s *snapshot.Snapshot) {
	tw := tabwriter.NewWriter(v.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "GPU\tmodel\tpod\tutil\tload\tSM active\tVRAM used\ttemp\tpower\tSM clock\tprocs\thealth\t")
	for _, g := range s.GPUs {
		pod := owners(s, g.UUID)
		if g.Lost {
			fmt.Fprintf(tw, "%d\t%s\t%s\t-\t\t-\t-\t-\t-\t-\t-\t%s\t\n", g.Index, short(g.Name), pod, health(g))
			continue
		}
		util := val(g.Utilization != nil, func() float64 { return g.Utilization.GPU })
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n",
			g.Index, short(g.Name), pod, pct(util), bar(util), pct(g.SMActive), vram(g.Memory),
			unit(g.TemperatureCelsius, "%.0f°C", 1), unit(g.PowerWatts, "%.0f W", 1),
			unit(g.SMClockHz, "%.0f MHz", 1e6), len(g.Processes), health(g))
	}
	_ = tw.Flush()
	v.mesh(s)
	for _, st := range s.Sources {
		state := "ok"
		if !st.Success {
			state = "FAILED: " + st.Err
		}
		fmt.Fprintf(v.out, "\ncollector %s: %s (%s)", st.Name, state, st.Duration.Round(time.Microsecond))
	}
	fmt.Fprintln(v.out)
	if v.picker != nil {
		fmt.Fprintf(v.out, "\n%s\n", v.picker())
	}
}

// owners names the pods the kubelet assigned a GPU to.
func owners(s *snapshot.Snapshot, uuid string) string {
	if s.Attribution == nil || len(s.Attribution.Owners[uuid]) == 0 {
		return "-"
	}
	var names []string
	for _, o := range s.Attribution.Owners[uuid] {
		names = append(names, o.Namespace+"/"+o.Pod)
	}
	return strings.Join(names, ",")
}

// mesh prints what the mesh sidecars of the GPU pods cost.
func (v *view) mesh(s *snapshot.Snapshot) {
	a := s.Attribution
	if a == nil {
		return
	}
	var sidecars int
	var ws, app uint64
	for _, p := range a.Pods {
		for _, c := range p.Containers {
			if c.Memory == nil {
				continue
			}
			if c.Sidecar {
				sidecars++
				ws += c.Memory.WorkingSet
			} else {
				app += c.Memory.WorkingSet
			}
		}
	}
	fmt.Fprintf(v.out, "\nmesh: %d istio-proxy sidecars in %d GPU pods use %.0f MiB of host memory (%.1f%% of the pods' %.1f GiB); mesh VRAM %d B (measured)\n",
		sidecars, len(a.Pods), float64(ws)/(1<<20), 100*float64(ws)/float64(max(ws+app, 1)), float64(ws+app)/(1<<30), a.MeshVRAM)
}

// summary prints the last table and where to go next.
func (v *view) summary(s *snapshot.Snapshot) {
	if s == nil {
		fmt.Fprintln(v.out, "no sample was taken")
		return
	}
	fmt.Fprintf(v.out, "\nfinal state after %s:\n\n", time.Since(v.start).Truncate(time.Second))
	v.table(s)
	fmt.Fprintf(v.out, "\nThe agent served these as Prometheus metrics on http://%s/metrics while it ran.\n", v.addr)
	fmt.Fprintln(v.out, "Keep it running with: go run ./cmd/headroom-demo --duration=0   (then: curl -s localhost:9400/metrics | grep ^headroom_gpu)")
}

func health(g snapshot.GPU) string {
	var parts []string
	if g.Lost {
		parts = append(parts, "LOST (off the bus)")
	}
	for code, n := range g.XidErrors {
		parts = append(parts, fmt.Sprintf("xid %d ×%d", code, n))
	}
	if g.ThrottleReasons != nil && *g.ThrottleReasons&0x60 != 0 {
		parts = append(parts, "thermal throttle")
	}
	if len(parts) == 0 {
		return "ok"
	}
	return strings.Join(parts, ", ")
}

func short(name string) string {
	return strings.TrimPrefix(strings.TrimPrefix(name, "Mock "), "NVIDIA ")
}

func val(ok bool, f func() float64) *float64 {
	if !ok {
		return nil
	}
	v := f()
	return &v
}

func pct(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%3.0f%%", 100**v)
}

func bar(v *float64) string {
	if v == nil {
		return ""
	}
	n := int(*v*10 + 0.5)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", 10-n) + "]"
}

func vram(m *snapshot.Memory) string {
	if m == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f/%.0f GiB", float64(m.Used)/(1<<30), float64(m.Total)/(1<<30))
}

func unit(v *float64, format string, div float64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v/div)
}
