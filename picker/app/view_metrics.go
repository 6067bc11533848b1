package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/picker/store"
)

// viewMetrics reports the current view's endpoints by the state of their
// telemetry, read at scrape time.
type viewMetrics struct {
	current func() *store.View
	desc    *prometheus.Desc
}

func newViewMetrics(current func() *store.View) *viewMetrics {
	return &viewMetrics{current: current, desc: prometheus.NewDesc("headroom_picker_endpoints",
		"Endpoints of the pool by their telemetry: fresh, direct (no fresh report, but the picker reads the model server itself), stale (the node's report is past its TTL), none (no report names the pod) or refused (reports name its IP, but none can be its pod's: another node's, another pod UID's, or two nodes claiming it).",
		[]string{"telemetry"}, nil)}
}

// Describe implements prometheus.Collector.
func (m *viewMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

// Collect implements prometheus.Collector.
func (m *viewMetrics) Collect(ch chan<- prometheus.Metric) {
	var fresh, direct, stale, none, refused float64
	for _, e := range m.current().Endpoints {
		switch {
		case e.Direct != nil:
			direct++
		case e.Refused:
			refused++
		case e.Pod == nil:
			none++
		case e.Stale:
			stale++
		default:
			fresh++
		}
	}
	for state, n := range map[string]float64{"fresh": fresh, "direct": direct, "stale": stale, "none": none, "refused": refused} {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, n, state)
	}
}
