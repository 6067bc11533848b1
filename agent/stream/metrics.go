package stream

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the streamer's own series, per picker replica.
type Metrics struct {
	sent, bytes, streamErrors *prometheus.CounterVec
	connected                 *prometheus.GaugeVec
	replicas                  prometheus.Gauge
}

// NewMetrics returns the streamer's series, unregistered.
func NewMetrics() *Metrics {
	l := []string{"picker"}
	return &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_report_stream_reports_sent_total", Help: "Node reports sent to each picker replica.",
		}, l),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_report_stream_sent_bytes_total", Help: "Encoded bytes of the node reports sent to each picker replica.",
		}, l),
		streamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_report_stream_errors_total", Help: "Report streams to each picker replica that failed or were refused.",
		}, l),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "headroom_report_stream_connected", Help: "1 while the picker replica has accepted this agent's stream.",
		}, l),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "headroom_report_stream_replicas", Help: "Picker replicas the agent streams to (resolved addresses).",
		}),
	}
}

func (m *Metrics) setConnected(addr string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.connected.WithLabelValues(addr).Set(v)
}

// forget drops the series of a replica that is gone.
func (m *Metrics) forget(addr string) {
	for _, v := range []*prometheus.CounterVec{m.sent, m.bytes, m.streamErrors} {
		v.DeleteLabelValues(addr)
	}
	m.connected.DeleteLabelValues(addr)
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.sent.Describe(ch)
	m.bytes.Describe(ch)
	m.streamErrors.Describe(ch)
	m.connected.Describe(ch)
	m.replicas.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.sent.Collect(ch)
	m.bytes.Collect(ch)
	m.streamErrors.Collect(ch)
	m.connected.Collect(ch)
	m.replicas.Collect(ch)
}

// Connected returns the connection state of addr (tests, /readyz).
func (m *Metrics) Connected(addr string) bool {
	g, err := m.connected.GetMetricWithLabelValues(addr)
	if err != nil {
		return false
	}
	return gaugeValue(g) == 1
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		return 0
	}
	return m.GetGauge().GetValue()
}
