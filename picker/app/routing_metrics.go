package app

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/picker/extproc"
	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
)

// routeMetrics are the request path's series. Labels are bounded: results
// and scorer names are fixed sets, endpoints are the pool's current ones
// (series of endpoints that left are deleted).
type routeMetrics struct {
	latency      prometheus.Histogram
	decisions    *prometheus.CounterVec
	picks        *prometheus.CounterVec
	contribution *prometheus.CounterVec
	age          prometheus.Histogram
	responses    *prometheus.CounterVec
	// blind counts routed requests whose destination had no fresh
	// telemetry: the picker routed on what it had.
	blind prometheus.Counter
}

func newRouteMetrics() *routeMetrics {
	return &routeMetrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "headroom_picker_decision_duration_seconds", Help: "Time to score the pool and pick endpoints for one request.",
			Buckets: []float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3},
		}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_picker_decisions_total", Help: "Routing decisions by result: routed, degraded (no healthy endpoint; ranked by in-flight), shed, no_endpoint, error.",
		}, []string{"result"}),
		picks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_picker_picks_total", Help: "Requests routed to each endpoint (the destination, not the fallbacks).",
		}, []string{"endpoint"}),
		contribution: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_picker_scorer_contribution_total", Help: "Sum of weight x score each scorer gave the chosen endpoints; divide by decisions for the mean.",
		}, []string{"scorer"}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "headroom_picker_decision_telemetry_age_seconds", Help: "Age of the chosen endpoint's node report (since its sample time) at decision.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "headroom_picker_responses_total", Help: "Routed requests by how their response ended: ok (2xx), error (other status), broken (stream ended early).",
		}, []string{"result"}),
		blind: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "headroom_picker_decisions_without_fresh_telemetry_total",
			Help: "Requests routed to an endpoint with no fresh telemetry (no report names its pod, or its node's report is past its TTL): the picker routed on what it had, by in-flight requests when every endpoint was stale.",
		}),
	}
}

func (m *routeMetrics) decided(took time.Duration, d scoring.Decision, err error, at time.Time) {
	m.latency.Observe(took.Seconds())
	switch {
	case errors.Is(err, scoring.ErrShed):
		m.decisions.WithLabelValues("shed").Inc()
		return
	case errors.Is(err, scoring.ErrNoEndpoint):
		m.decisions.WithLabelValues("no_endpoint").Inc()
		return
	case err != nil:
		m.decisions.WithLabelValues("error").Inc()
		return
	case d.Degraded:
		m.decisions.WithLabelValues("degraded").Inc()
	default:
		m.decisions.WithLabelValues("routed").Inc()
	}
	if len(d.Endpoints) == 0 {
		return
	}
	dest := d.Endpoints[0]
	m.picks.WithLabelValues(hostPort(dest.Address)).Inc()
	if dest.Stale {
		m.blind.Inc()
	}
	for name, c := range d.Contributions {
		m.contribution.WithLabelValues(name).Add(max(c, 0))
	}
	if !dest.ReportSample.IsZero() {
		m.age.Observe(max(at.Sub(dest.ReportSample).Seconds(), 0))
	}
}

func (m *routeMetrics) done(o extproc.Outcome) {
	switch {
	case o.Err != nil || o.Status == 0:
		m.responses.WithLabelValues("broken").Inc()
	case o.Status >= 200 && o.Status < 300:
		m.responses.WithLabelValues("ok").Inc()
	default:
		m.responses.WithLabelValues("error").Inc()
	}
}

// Describe and Collect make routeMetrics one prometheus.Collector.
func (m *routeMetrics) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(m, ch) }

// Collect implements prometheus.Collector.
func (m *routeMetrics) Collect(ch chan<- prometheus.Metric) {
	m.latency.Collect(ch)
	m.decisions.Collect(ch)
	m.picks.Collect(ch)
	m.contribution.Collect(ch)
	m.age.Collect(ch)
	m.responses.Collect(ch)
	m.blind.Collect(ch)
}

// forgetGone drops the per-endpoint series of endpoints that left the
// pool, so rollouts do not grow the series without bound.
func (m *routeMetrics) forgetGone(old, cur []store.Target) {
	keep := make(map[string]bool, len(cur))
	for _, t := range cur {
		keep[t.Address] = true
	}
	for _, t := range old {
		if !keep[t.Address] {
			m.picks.DeleteLabelValues(hostPort(t.Address))
		}
	}
}
