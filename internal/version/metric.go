package version

import "github.com/prometheus/client_golang/prometheus"

// Collector exports headroom_build_info: always 1, with the version, the
// commit, the Go version and the target platform as labels, so a
// dashboard or an alert can tell which build each process runs.
func (i Info) Collector() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "headroom_build_info",
		Help: "Always 1; the labels say what the process was built from.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion,
			"goos": i.OS, "goarch": i.Arch,
		},
	})
	g.Set(1)
	return g
}
