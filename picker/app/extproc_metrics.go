package app

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/picker/extproc"
	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
)

var (
	extStreamsDesc = prometheus.NewDesc("headroom_picker_extproc_streams",
		"ext_proc streams served now (requests in flight through the gateways); at --extproc.max-streams new ones get 429.", nil, nil)
	extBufferedDesc = prometheus.NewDesc("headroom_picker_extproc_buffered_bytes",
		"Bytes the ext_proc streams hold now (request bodies and headers, response bodies kept for their usage), against --extproc.max-buffered-bytes.", nil, nil)
	extBudgetDesc = prometheus.NewDesc("headroom_picker_extproc_buffer_limit_bytes",
		"--extproc.max-buffered-bytes: over it requests get 429 with Retry-After.", nil, nil)
	extRefusedDesc = prometheus.NewDesc("headroom_picker_extproc_refused_total",
		"Requests answered for a limit, by reason: too_many_streams and buffer_full (429), body_too_large (413), request_timeout (408), invalid_model (400).", []string{"reason"}, nil)
	extExpiredDesc = prometheus.NewDesc("headroom_picker_extproc_expired_total",
		"Streams ended at their phase deadline, by phase; a pick held in awaiting_response_headers or streaming_response_body is released.", []string{"phase"}, nil)
	extMismatchDesc = prometheus.NewDesc("headroom_picker_extproc_served_mismatch_total",
		"Responses that named a served endpoint the request was not routed to (ignored: it trains nothing).", nil, nil)
)

// extProcCollector turns the ext_proc server's Stats into series at
// scrape time (the request path keeps plain atomic counters).
type extProcCollector struct{ srv *extproc.Server }

// Describe implements prometheus.Collector.
func (c extProcCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{extStreamsDesc, extBufferedDesc, extBudgetDesc, extRefusedDesc, extExpiredDesc, extMismatchDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c extProcCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	ch <- prometheus.MustNewConstMetric(extStreamsDesc, prometheus.GaugeValue, float64(st.Streams))
	ch <- prometheus.MustNewConstMetric(extBufferedDesc, prometheus.GaugeValue, float64(st.BufferedBytes))
	ch <- prometheus.MustNewConstMetric(extBudgetDesc, prometheus.GaugeValue, float64(st.BufferLimit))
	for reason, n := range st.Refused {
		ch <- prometheus.MustNewConstMetric(extRefusedDesc, prometheus.CounterValue, float64(n), reason)
	}
	for phase, n := range st.Expired {
		ch <- prometheus.MustNewConstMetric(extExpiredDesc, prometheus.CounterValue, float64(n), phase)
	}
	ch <- prometheus.MustNewConstMetric(extMismatchDesc, prometheus.CounterValue, float64(st.ServedMismatch))
}

var inflightDesc = prometheus.NewDesc("headroom_picker_endpoint_inflight",
	"Requests this replica routed to each pool endpoint and has not seen end (the in-flight count the in-flight and queue scorers read).", []string{"endpoint"}, nil)

// inflightCollector reports the tracker's in-flight count of each
// endpoint of the pool at scrape time (labels bounded by the pool).
type inflightCollector struct {
	targets func() []store.Target
	tracker *scoring.Tracker
}

// Describe implements prometheus.Collector.
func (c inflightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- inflightDesc }

// Collect implements prometheus.Collector.
func (c inflightCollector) Collect(ch chan<- prometheus.Metric) {
	for _, t := range c.targets() {
		ch <- prometheus.MustNewConstMetric(inflightDesc, prometheus.GaugeValue, float64(c.tracker.InFlight(t.Address)), hostPort(t.Address))
	}
}
