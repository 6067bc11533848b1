//go:build cgo

package main

import (
	"fmt"
	"math"
	"time"
)

// stat is a value's mean and range over a cell's runs.
type stat struct{ mean, lo, hi float64 }

func statOf(vs []float64) stat {
	if len(vs) == 0 {
		return stat{math.NaN(), math.NaN(), math.NaN()}
	}
	s := stat{lo: math.Inf(1), hi: math.Inf(-1)}
	for _, v := range vs {
		s.mean += v
		s.lo, s.hi = math.Min(s.lo, v), math.Max(s.hi, v)
	}
	s.mean /= float64(len(vs))
	return s
}

// halfRange is half the spread between the lowest and highest run.
func (s stat) halfRange() float64 { return (s.hi - s.lo) / 2 }

// cell is a cell's runs reduced: means and ranges over the seeds.
type cell struct {
	key
	runs                int
	p50, p90, p99, tput stat
	failed              stat
	share, capShare     map[string]stat
	classP90            map[string]stat
	pick                stat // seconds
	pickP50, pickP99    stat // seconds, as the gateway sees a pick
	rate, capacity      float64
	burst               bool
	pickerErrors, reqs  int
}

// cells reduces results to cells, in the order their first run came.
func cells(results []result) []cell {
	var order []key
	by := map[key][]result{}
	for _, r := range results {
		if _, ok := by[r.key]; !ok {
			order = append(order, r.key)
		}
		by[r.key] = append(by[r.key], r)
	}
	out := make([]cell, 0, len(order))
	for _, k := range order {
		out = append(out, reduce(k, by[k]))
	}
	return out
}

func reduce(k key, rs []result) cell {
	c := cell{key: k, runs: len(rs), share: map[string]stat{}, capShare: map[string]stat{}, classP90: map[string]stat{}}
	col := func(f func(result) float64) stat {
		var vs []float64
		for _, r := range rs {
			vs = append(vs, f(r))
		}
		return statOf(vs)
	}
	sec := func(d time.Duration) float64 { return d.Seconds() }
	c.p50 = col(func(r result) float64 { return sec(r.sum.TTFT.P50) })
	c.p90 = col(func(r result) float64 { return sec(r.sum.TTFT.P90) })
	c.p99 = col(func(r result) float64 { return sec(r.sum.TTFT.P99) })
	c.tput = col(func(r result) float64 { return r.sum.Throughput })
	c.failed = col(func(r result) float64 { return float64(r.sum.Failed) })
	c.pick = col(func(r result) float64 { return sec(r.pick) })
	c.pickP50 = col(func(r result) float64 { return sec(r.pickTimes.Quantile(0.5)) })
	c.pickP99 = col(func(r result) float64 { return sec(r.pickTimes.Quantile(0.99)) })
	c.rate = col(func(r result) float64 { return r.rate }).mean
	c.capacity = col(func(r result) float64 { return r.capacity }).mean
	c.burst = k.load == 0
	for _, r := range rs {
		c.pickerErrors += int(r.pickerErrors)
		c.reqs += r.sum.Requests
	}
	for cl := range rs[0].capShare {
		c.share[cl] = col(func(r result) float64 { return r.share[cl] })
		c.capShare[cl] = col(func(r result) float64 { return r.capShare[cl] })
	}
	for cl := range rs[0].classTTFT {
		c.classP90[cl] = col(func(r result) float64 { return sec(r.classTTFT[cl].P90) })
	}
	return c
}

// find returns the cell of a scenario, simulator, policy and load.
func find(cs []cell, scenario, sim, policy string, load float64) (cell, bool) {
	for _, c := range cs {
		if c.scenario == scenario && c.sim == sim && c.policy == policy && math.Abs(c.load-load) < 1e-9 {
			return c, true
		}
	}
	return cell{}, false
}

// ratio is a over b, "—" when either is missing or b is 0.
func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// secs prints a stat in seconds: the mean and, over several runs, the
// range.
func secs(s stat, runs int) string {
	if math.IsNaN(s.mean) {
		return "—"
	}
	if runs < 2 {
		return fmt.Sprintf("%.2f", s.mean)
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", s.mean, s.lo, s.hi)
}
