package agent

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/headroom-dev/headroom/internal/version"
)

// runtimeRegistry holds the Go and process collectors and
// headroom_build_info.
func runtimeRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		version.Get().Collector(),
	)
	return reg
}

// Handler serves /metrics, /healthz, /readyz and a small index page.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if a.sampler.Latest() == nil {
			http.Error(w, "no sample yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "headroom-agent on %s\n\n/metrics  Prometheus metrics\n/healthz  liveness\n/readyz   readiness (after the first sample)\n", a.opts.NodeName)
	})
	return mux
}
