//go:build cgo

package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/gateway"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// classShares is each pod class's share of the requests the gateway
// routed between the two stats snapshots, and its share of the pool's
// capacity.
func classShares(c *cluster.Cluster, from, to gateway.Stats, meanPrompt, meanOutput float64) (share, capShare map[string]float64) {
	share, capShare = map[string]float64{}, map[string]float64{}
	var routed, capacity float64
	for _, s := range c.Servers() {
		n := float64(to.PerEndpoint[s.Addr].Routed - from.PerEndpoint[s.Addr].Routed)
		share[s.Class] += n
		routed += n
		cp := s.Capacity(meanPrompt, meanOutput)
		capShare[s.Class] += cp
		capacity += cp
	}
	for cl := range share {
		if routed > 0 {
			share[cl] /= routed
		}
		if capacity > 0 {
			capShare[cl] /= capacity
		}
	}
	return share, capShare
}

// classTTFT is the TTFT of the successful requests each class served,
// by the endpoint the gateway names (X-Gateway-Upstream), or the server's
// own X-Served-By.
func classTTFT(c *cluster.Cluster, recs []loadgen.Record, skip time.Duration) map[string]loadgen.Quantiles {
	classOf := map[string]string{}
	for _, s := range c.Servers() {
		classOf[s.Name], classOf[s.Addr] = s.Class, s.Class
	}
	by := map[string][]loadgen.Record{}
	for _, r := range recs {
		cl, ok := classOf[r.Upstream]
		if !ok {
			cl, ok = classOf[r.ServedBy]
		}
		if ok {
			by[cl] = append(by[cl], r)
		}
	}
	out := map[string]loadgen.Quantiles{}
	for cl, rs := range by {
		// Summarize skips by the earliest start of what it is given, so
		// the warm-up is cut here, against the whole run's start.
		out[cl] = loadgen.Summarize(afterWarmup(recs, rs, skip), 0).TTFT
	}
	return out
}

func afterWarmup(all, some []loadgen.Record, skip time.Duration) []loadgen.Record {
	if len(all) == 0 {
		return nil
	}
	from := all[0].Start
	for _, r := range all {
		if r.Start.Before(from) {
			from = r.Start
		}
	}
	from = from.Add(skip)
	var out []loadgen.Record
	for _, r := range some {
		if !r.Start.Before(from) {
			out = append(out, r)
		}
	}
	return out
}

// classes lists the classes of a share map, sorted.
func classes(m map[string]float64) []string {
	var out []string
	for cl := range m {
		out = append(out, cl)
	}
	slices.Sort(out)
	return out
}

// formatShares prints "slow 7.1% (capacity 6.9%)" for every class but the
// largest by capacity, which is the rest.
func formatShares(share, capShare map[string]float64) string {
	cls := classes(capShare)
	if len(cls) < 2 {
		return "—"
	}
	var parts []string
	for _, cl := range minorClasses(capShare) {
		parts = append(parts, fmt.Sprintf("%s %.1f%% (capacity %.1f%%)", cl, 100*share[cl], 100*capShare[cl]))
	}
	return strings.Join(parts, ", ")
}

// minorClasses are every class but the one with the most capacity.
func minorClasses(capShare map[string]float64) []string {
	cls := classes(capShare)
	if len(cls) < 2 {
		return nil
	}
	major := cls[0]
	for _, cl := range cls {
		if capShare[cl] > capShare[major] {
			major = cl
		}
	}
	return slices.DeleteFunc(cls, func(cl string) bool { return cl == major })
}
