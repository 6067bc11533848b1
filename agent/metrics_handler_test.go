package agent

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/headroom-dev/headroom/agent/exporter"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

func snapWithTemp(c float64) *snapshot.Snapshot {
	return &snapshot.Snapshot{Node: "n", GPUs: []snapshot.GPU{{Index: 0, UUID: "GPU-a", Name: "G", TemperatureCelsius: &c}}}
}

func serve(t *testing.T, h http.Handler, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestMetricsHandler(t *testing.T) {
	t.Parallel()
	var cur atomic.Pointer[snapshot.Snapshot]
	cur.Store(snapWithTemp(40))
	e := exporter.New(cur.Load)
	h := newMetricsHandler(cur.Load, time.Second, testutil.Logger(), e, runtimeRegistry())
	const temp = `headroom_gpu_temperature_celsius{container="",gpu="0",model="G",namespace="",node="n",pod="",uuid="GPU-a"}`

	tests := []struct {
		name       string
		hdr        map[string]string
		wantType   string
		wantInBody []string
	}{
		{"plain text", nil, "text/plain", []string{temp + " 40", "go_goroutines", "process_resident_memory_bytes"}},
		{"gzip", map[string]string{"Accept-Encoding": "gzip, deflate"}, "text/plain", []string{temp + " 40"}},
		{"gzip refused", map[string]string{"Accept-Encoding": "gzip;q=0"}, "text/plain", []string{temp + " 40"}},
		{"openmetrics", map[string]string{"Accept": "application/openmetrics-text;version=1.0.0"}, "application/openmetrics-text", []string{temp + " 40", "# EOF"}},
		{"protobuf", map[string]string{"Accept": "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"}, "application/vnd.google.protobuf", []string{"headroom_gpu_temperature_celsius", "GPU-a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := serve(t, h, tt.hdr)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.wantType) {
				t.Errorf("Content-Type = %q, want %s", ct, tt.wantType)
			}
			for _, want := range tt.wantInBody {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q", want)
				}
			}
		})
	}

	// Same snapshot: the cached bytes are served. New snapshot: rendered by
	// Prewarm, as the sampler calls it after each sample.
	_, first := serve(t, h, nil)
	_, again := serve(t, h, nil)
	if first != again {
		t.Error("two scrapes of one snapshot differ; the cache is not used")
	}
	cur.Store(snapWithTemp(77))
	if _, body := serve(t, h, nil); !strings.Contains(body, temp+" 40") {
		t.Errorf("before Prewarm the previous snapshot's body should be served")
	}
	h.Prewarm()
	if _, body := serve(t, h, nil); !strings.Contains(body, temp+" 77") {
		t.Errorf("new snapshot not served:\n%s", body)
	}
}

func TestMetricsHandlerBeforeFirstSample(t *testing.T) {
	t.Parallel()
	none := func() *snapshot.Snapshot { return nil }
	h := newMetricsHandler(none, time.Second, testutil.Logger(), exporter.New(none), runtimeRegistry())
	resp, body := serve(t, h, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "headroom_build_info") || strings.Contains(body, "headroom_gpu_") {
		t.Errorf("before the first sample: status %d, body:\n%s", resp.StatusCode, body)
	}
}

func TestPrewarmFollowsEachFormatsScrapePeriod(t *testing.T) {
	t.Parallel()
	var cur atomic.Pointer[snapshot.Snapshot]
	h := newMetricsHandler(cur.Load, time.Second, testutil.Logger(), exporter.New(cur.Load))
	now := time.Unix(1000, 0)
	h.now = func() time.Time { return now }
	temp := 40.0
	sample := func() { // what the sampler does each interval
		now = now.Add(time.Second)
		temp++
		cur.Store(snapWithTemp(temp))
		h.Prewarm()
	}
	prewarmed := func(hdr map[string]string) bool {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		key := bodyKey{format: expfmt.NegotiateAccept(req.Header, h.accepted...), gzip: acceptsGzip(req)}
		r := h.cur.Load()
		_, ok := r.bodies[key]
		return r != nil && r.snap == cur.Load() && ok
	}
	fast := map[string]string{"Accept-Encoding": "gzip"}                              // every second
	slow := map[string]string{"Accept": "application/openmetrics-text;version=1.0.0"} // every 15 s
	sample()
	serve(t, h, fast)
	serve(t, h, slow)
	for i := 1; i <= 30; i++ {
		sample()
		if got := prewarmed(fast); i > 1 && !got {
			t.Fatalf("sample %d: the 1 s scraper's format is not pre-rendered", i)
		}
		serve(t, h, fast)
		// The slow scraper's period is learnt at its second scrape (i=15);
		// from then on only the samples just before a scrape render it.
		want := i == 29 || i == 30
		if got := prewarmed(slow); got != want {
			t.Errorf("sample %d: 15 s format pre-rendered = %v, want %v", i, got, want)
		}
		if i%15 == 0 {
			_, body := serve(t, h, slow)
			if !strings.Contains(body, fmt.Sprintf(" %g", temp)) {
				t.Errorf("sample %d: scrape did not get the latest snapshot", i)
			}
		}
	}
	now = now.Add(h.warmFor + time.Minute) // both scrapers gone
	sample()
	if prewarmed(fast) || prewarmed(slow) {
		t.Error("formats nobody scrapes any more are still rendered")
	}
}
