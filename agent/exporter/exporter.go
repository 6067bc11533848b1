// Package exporter renders a node snapshot as Prometheus metric families.
//
// The exporter is a prometheus.Gatherer that builds the families of the
// latest snapshot directly: label pairs are shared between all series of a
// GPU and nothing is validated or re-sorted per series, so rendering a
// large node costs a fraction of the const-metric path. A scrape never
// reaches NVML or any other source. Every metric is declared once in the
// catalogue, which also feeds docs/metrics.md's consistency test.
package exporter

import (
	"cmp"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/headroom-dev/headroom/snapshot"
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
	typ dto.MetricType
}

// Exporter gathers the latest snapshot's families.
type Exporter struct {
	latest func() *snapshot.Snapshot
	defs   []*def

	gpu   gpuDefs
	agent agentDefs
	pods  podDefs
	dcgm  dcgmDefs
	ms    modelServerDefs
	mesh  meshDefs
	en    energyDefs
}

// New returns an exporter reading snapshots from latest, which may return
// nil before the first sample. The build information is not the
// snapshot's: the agent serves headroom_build_info from internal/version
// beside the runtime collectors.
func New(latest func() *snapshot.Snapshot) *Exporter {
	e := &Exporter{latest: latest}
	e.gpu = e.newGPUDefs()
	e.dcgm = e.newDCGMDefs()
	e.agent = e.newAgentDefs()
	e.pods = e.newPodDefs()
	e.ms = e.newModelServerDefs()
	e.mesh = e.newMeshDefs()
	e.en = e.newEnergyDefs()
	return e
}

// Catalogue lists every metric family the exporter can emit.
func Catalogue() []Metric {
	e := New(nil)
	out := make([]Metric, len(e.defs))
	for i, d := range e.defs {
		out[i] = d.Metric
	}
	return out
}

func (e *Exporter) def(name, typ, source, help string, labels ...string) *def {
	t := dto.MetricType_GAUGE
	if typ == "counter" {
		t = dto.MetricType_COUNTER
	}
	d := &def{Metric: Metric{Name: name, Help: help, Type: typ, Labels: labels, Source: source}, typ: t}
	e.defs = append(e.defs, d)
	return d
}

// Gather renders the latest snapshot: families sorted by name, each
// series' label pairs sorted by name, empty families left out.
func (e *Exporter) Gather() ([]*dto.MetricFamily, error) {
	b := newBuilder(len(e.defs))
	if s := e.latest(); s != nil {
		e.gatherAgent(b, s)
		e.gatherGPUs(b, s)
		e.gatherDCGM(b, s)
		e.gatherPods(b, s)
		e.gatherModelServers(b, s)
		e.gatherMesh(b, s)
		e.gatherEnergy(b, s)
	}
	return b.families(e.defs), nil
}

// builder accumulates the series of one Gather.
type builder struct {
	byDef  map[*def][]*dto.Metric
	shared map[[2]string]*dto.LabelPair
}

func newBuilder(n int) *builder {
	return &builder{byDef: make(map[*def][]*dto.Metric, n), shared: map[[2]string]*dto.LabelPair{}}
}

// sharedLP returns one label pair per name and value for the whole Gather,
// for labels that repeat across many series (a process's pod and
// container, MIG instance).
func (b *builder) sharedLP(name, value string) *dto.LabelPair {
	k := [2]string{name, value}
	p, ok := b.shared[k]
	if !ok {
		p = b.lp(name, value)
		b.shared[k] = p
	}
	return p
}

// lp returns a label pair; callers share it between series.
func (b *builder) lp(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// add records one sample of d with label pairs base plus extra, which it
// merges in name order.
func (b *builder) add(d *def, v float64, base []*dto.LabelPair, extra ...*dto.LabelPair) {
	m := &dto.Metric{Label: mergePairs(base, extra)}
	if d.typ == dto.MetricType_COUNTER {
		m.Counter = &dto.Counter{Value: proto.Float64(v)}
	} else {
		m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
	}
	b.byDef[d] = append(b.byDef[d], m)
}

func (b *builder) families(defs []*def) []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(b.byDef))
	for _, d := range defs {
		ms := b.byDef[d]
		if len(ms) == 0 {
			continue
		}
		slices.SortFunc(ms, compareSeries)
		out = append(out, &dto.MetricFamily{Name: proto.String(d.Name), Help: proto.String(d.Help), Type: d.typ.Enum(), Metric: ms})
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

// compareSeries orders series by their label values, as client_golang's
// registry does, so output is deterministic.
func compareSeries(a, b *dto.Metric) int {
	for i := range min(len(a.Label), len(b.Label)) {
		if c := cmp.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.Label), len(b.Label))
}

// mergePairs returns base (sorted by name) with extra inserted in order.
func mergePairs(base []*dto.LabelPair, extra []*dto.LabelPair) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(base), len(base)+len(extra))
	copy(out, base)
	for _, p := range extra {
		i := len(out)
		out = append(out, p)
		for ; i > 0 && out[i-1].GetName() > p.GetName(); i-- {
			out[i] = out[i-1]
		}
		out[i] = p
	}
	return out
}

func unixOrZero(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
