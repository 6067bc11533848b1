//go:build cgo

package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/snapshot"
)

// benchAgent is an agent over 8 simulated H100s with procs processes each,
// sampled once. It does not listen: the benchmarks call its handler.
func benchAgent(b *testing.B, procs int) *Agent {
	b.Helper()
	sim, err := gpusim.New(gpusim.Options{Profile: "dgxh100", Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	sim.Populate(procs, 1)
	for i := range sim.NumGPUs() {
		sim.SetLoad(i, 0.5)
	}
	o := DefaultOptions()
	o.NodeName, o.ListenAddress = "bench", "127.0.0.1:0"
	o.Collectors = o.Collectors.With(nvml.Entry(gonvml.FromInterface(sim)))
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	a, err := New(ctx, o, testutil.Logger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.listener.Close(); _ = a.runner.Close() })
	a.sampler.SampleOnce(ctx)
	a.sampler.SampleOnce(ctx) // GPM needs two samples
	return a
}

func scrape(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("/metrics = %d", w.Code)
	}
	_, _ = io.Copy(io.Discard, w.Body)
}

// BenchmarkScrape compares serving the sampled snapshot (what the agent
// does) with sampling NVML inside every scrape (what exporters that call
// the driver per scrape do), on 8 GPUs × 100 processes. The simulator's
// NVML calls cost far less than the real driver's, so the real gap is
// wider than this ratio.
func BenchmarkScrape(b *testing.B) {
	a := benchAgent(b, 100)
	h := a.Handler()
	b.Run("snapshot", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			scrape(b, h)
		}
	})
	b.Run("nvml-per-scrape", func(b *testing.B) {
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			a.sampler.SampleOnce(ctx)
			scrape(b, h)
		}
	})
}

// BenchmarkSample is one sampling tick of 8 GPUs × 100 processes.
func BenchmarkSample(b *testing.B) {
	a := benchAgent(b, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		a.sampler.SampleOnce(ctx)
	}
}

// BenchmarkRender is the work done once per sample for each format being
// scraped: gather every family, encode OpenMetrics, gzip (Prewarm).
func BenchmarkRender(b *testing.B) {
	a := benchAgent(b, 100)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	req.Header.Set("Accept-Encoding", "gzip")
	for range 2 { // two scrapes: the format and its period are known
		a.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}
	snaps := []*snapshot.Snapshot{a.sampler.Latest(), a.sampler.SampleOnce(context.Background())}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a.sampler.latest.Store(snaps[i%2])
		i++
		a.metrics.Prewarm()
	}
	if r := a.metrics.cur.Load(); r == nil || len(r.bodies) != 1 {
		b.Fatal("Prewarm rendered nothing")
	}
}
