package direct

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the fallback's own series.
type Metrics struct {
	reads    *prometheus.CounterVec
	seconds  prometheus.Histogram
	targets  prometheus.Gauge
	deferred prometheus.Counter
}

// NewMetrics returns the fallback's metrics, unregistered.
func NewMetrics() *Metrics {
	return &Metrics{
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_picker_direct_reads_total",
			Help: "Model-server metrics reads the picker made itself for endpoints without a fresh agent report, by result: ok, error (unreachable, refused, too large, unparsable) or invalid_<part> (values the report contract forbids).",
		}, []string{"result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "headroom_picker_direct_read_seconds",
			Help:    "Duration of the picker's own model-server metrics reads.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "headroom_picker_direct_endpoints",
			Help: "Endpoints the picker reads itself in the last round: their node has no fresh agent report.",
		}),
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "headroom_picker_direct_deferred_total",
			Help: "Reads put off to a later round because more endpoints needed one than --direct-scrape.max-endpoints allows.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.reads.Describe(ch)
	m.seconds.Describe(ch)
	m.targets.Describe(ch)
	m.deferred.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.reads.Collect(ch)
	m.seconds.Collect(ch)
	m.targets.Collect(ch)
	m.deferred.Collect(ch)
}
