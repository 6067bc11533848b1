package ingest

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the ingest server's series.
type Metrics struct {
	store                       *Store
	received, bytes, outOfOrder prometheus.Counter
	rejected, dropped           *prometheus.CounterVec
	freshness                   prometheus.Histogram
	nodes                       *prometheus.Desc
}

// NewMetrics returns the ingest series over store, unregistered.
func NewMetrics(store *Store) *Metrics {
	return &Metrics{
		store: store,
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "headroom_picker_reports_received_total", Help: "Node reports received and accepted as valid.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "headroom_picker_report_received_bytes_total", Help: "Encoded bytes of the node reports received.",
		}),
		outOfOrder: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "headroom_picker_reports_out_of_order_total", Help: "Valid reports dropped because the node already held a newer one.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_picker_reports_rejected_total", Help: "Streams or reports refused, by reason (auth, invalid, wrong_node).",
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_picker_report_sections_dropped_total",
			Help: "Parts of accepted reports left out for impossible values, by section (pod, gpu_reading) and reason; the rest of each report counts.",
		}, []string{"section", "reason"}),
		freshness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "headroom_picker_report_freshness_seconds",
			Help:    "Time from a report's sample time on the node to its receipt by this picker.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		nodes: prometheus.NewDesc("headroom_picker_nodes",
			"Nodes known to this picker, by state: fresh, stale (report older than its TTL) and whether an agent stream is connected.",
			[]string{"state", "connected"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(m, ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.received.Collect(ch)
	m.bytes.Collect(ch)
	m.outOfOrder.Collect(ch)
	m.rejected.Collect(ch)
	m.dropped.Collect(ch)
	m.freshness.Collect(ch)
	var counts [2][2]float64 // [stale][connected]
	for _, v := range m.store.Nodes() {
		counts[b2i(v.Stale)][b2i(v.Connected)]++
	}
	for s, state := range []string{"fresh", "stale"} {
		for c, conn := range []string{"false", "true"} {
			ch <- prometheus.MustNewConstMetric(m.nodes, prometheus.GaugeValue, counts[s][c], state, conn)
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
