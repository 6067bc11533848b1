// Package exporter renders the latest node snapshot as Prometheus metrics.
//
// Collect reads the snapshot the sampler published last and turns it into
// constant metrics: a scrape never reaches NVML or any other source. Every
// metric is declared once in the catalogue built by New, which also feeds
// docs/metrics.md's consistency test.
package exporter

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/agent/snapshot"
)

// Metric documents one metric family the exporter can emit.
type Metric struct {
	Name   string
	Help   string
	Type   string // gauge or counter
	Labels []string
	Source string // the collector that fills it, or "agent"
}

// def is one catalogue entry.
type def struct {
	Metric
	desc *prometheus.Desc
	vt   prometheus.ValueType
}

// Exporter is a prometheus.Collector over the latest snapshot.
type Exporter struct {
	latest func() *snapshot.Snapshot
	defs   []*def

	gpu     gpuDefs
	agent   agentDefs
	version string
}

// New returns an exporter reading snapshots from latest, which may return
// nil before the first sample. version is reported in build info.
func New(latest func() *snapshot.Snapshot, version string) *Exporter {
	e := &Exporter{latest: latest, version: version}
	e.gpu = e.newGPUDefs()
	e.agent = e.newAgentDefs()
	return e
}

// Catalogue lists every metric family the exporter can emit.
func Catalogue() []Metric {
	e := New(nil, "")
	out := make([]Metric, len(e.defs))
	for i, d := range e.defs {
		out[i] = d.Metric
	}
	return out
}

func (e *Exporter) def(name, typ, source, help string, labels ...string) *def {
	vt := prometheus.GaugeValue
	if typ == "counter" {
		vt = prometheus.CounterValue
	}
	d := &def{
		Metric: Metric{Name: name, Help: help, Type: typ, Labels: labels, Source: source},
		desc:   prometheus.NewDesc(name, help, labels, nil),
		vt:     vt,
	}
	e.defs = append(e.defs, d)
	return d
}

// Describe sends every descriptor of the catalogue.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range e.defs {
		ch <- d.desc
	}
}

// Collect renders the latest snapshot.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.collectBuildInfo(ch)
	s := e.latest()
	if s == nil {
		return
	}
	e.collectAgent(ch, s)
	e.collectGPUs(ch, s)
}

// emit sends one sample of d.
func emit(ch chan<- prometheus.Metric, d *def, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d.desc, d.vt, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
