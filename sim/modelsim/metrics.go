package modelsim

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Bucket boundaries, as vLLM's.
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
		0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	tokenBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
		0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	e2eBuckets = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
		30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
	promptBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}
)

// metrics are a server's vLLM-named metrics, in its own registry so that
// many servers live in one process. The gauges read the scheduler's state
// when scraped; the rest are updated by the scheduler.
type metrics struct {
	reg                                      *prometheus.Registry
	ttft, tpot, itl, e2e                     prometheus.Histogram
	queue, prefill, inference, promptLen     prometheus.Histogram
	prompt, generation, preemptions, success prometheus.Counter
	prefixQueries, prefixHits                prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	labels := prometheus.Labels{"model_name": s.model}
	gauge := func(name, help string, f func(Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(s.Stats()) })
	}
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, ConstLabels: labels, Buckets: buckets})
	}
	counter := func(name, help string, extra prometheus.Labels) prometheus.Counter {
		l := prometheus.Labels{}
		for k, v := range labels {
			l[k] = v
		}
		for k, v := range extra {
			l[k] = v
		}
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: l})
	}
	m := &metrics{
		reg:           prometheus.NewRegistry(),
		ttft:          hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", ttftBuckets),
		tpot:          hist("vllm:time_per_output_token_seconds", "Histogram of time per output token in seconds (the same samples as the inter-token latency).", tokenBuckets),
		itl:           hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", tokenBuckets),
		e2e:           hist("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", e2eBuckets),
		queue:         hist("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", e2eBuckets),
		prefill:       hist("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", e2eBuckets),
		inference:     hist("vllm:request_inference_time_seconds", "Histogram of time spent in RUNNING phase for request.", e2eBuckets),
		promptLen:     hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", promptBuckets),
		prompt:        counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", nil),
		generation:    counter("vllm:generation_tokens_total", "Number of generation tokens processed.", nil),
		preemptions:   counter("vllm:num_preemptions_total", "Cumulative number of preemptions from the engine.", nil),
		success:       counter("vllm:request_success_total", "Count of successfully processed requests.", prometheus.Labels{"finished_reason": "length"}),
		prefixQueries: counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.", nil),
		prefixHits:    counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.", nil),
	}
	m.reg.MustRegister(
		gauge("vllm:num_requests_running", "Number of requests in model execution batches.", func(st Stats) float64 { return float64(st.Running) }),
		gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", func(st Stats) float64 { return float64(st.Waiting) }),
		gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", func(st Stats) float64 { return st.KVUsage }),
		m.ttft, m.tpot, m.itl, m.e2e, m.queue, m.prefill, m.inference, m.promptLen, m.prompt, m.generation, m.preemptions, m.success, m.prefixQueries, m.prefixHits,
	)
	if len(s.loras) > 0 {
		m.reg.MustRegister(newLoRAInfo(s))
	}
	return m
}

// metricsHandler serves the registry, after the delay SetMetricsDelay set.
func (s *Server) metricsHandler() http.Handler {
	prom := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(s.metricsDelay.Load()); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			}
		}
		prom.ServeHTTP(w, r)
	})
}
