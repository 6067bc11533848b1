package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/picker/store"
)

// heldOutMetrics reports the current view's endpoints that the health
// filter holds out of routing, by reason, read at scrape time.
type heldOutMetrics struct {
	current func() *store.View
	held    func(*store.View) map[string]int
	desc    *prometheus.Desc
}

func newHeldOutMetrics(current func() *store.View, held func(*store.View) map[string]int) *heldOutMetrics {
	return &heldOutMetrics{current: current, held: held, desc: prometheus.NewDesc("headroom_picker_endpoints_held_out",
		"Endpoints the health filter holds out of routing, by reason: model_server_stale, gpu_lost, row_remap_failed, row_remap_pending, ecc_uncorrected (a GPU's memory unsafe until a reset) or xid (a new critical Xid, for the hold time).",
		[]string{"reason"}, nil)}
}

// Describe implements prometheus.Collector.
func (m *heldOutMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.desc }

// Collect implements prometheus.Collector.
func (m *heldOutMetrics) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range m.held(m.current()) {
		ch <- prometheus.MustNewConstMetric(m.desc, prometheus.GaugeValue, float64(n), reason)
	}
}
