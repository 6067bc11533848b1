package modelserver

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
)

// BenchmarkParse is the parse of one realistic vLLM response (two
// data-parallel engines, 86 KB, mostly histograms).
func BenchmarkParse(b *testing.B) {
	body := fixture(b, "vllm.prom")
	p := newParser()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.parse(VLLM, body, "text/plain; version=0.0.4"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRound is one scrape round over loopback: HTTP GET with a
// kept-alive connection, read, filter, parse and publish, for 1 and 8
// vLLM pods (a full 8-GPU node).
func BenchmarkRound(b *testing.B) {
	body := fixture(b, "vllm.prom")
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("pods=%d", n), func(b *testing.B) {
			s := newScraper(5*time.Second, testutil.Logger())
			defer s.client.CloseIdleConnections()
			var specs []targetSpec
			for i := range n {
				srv := newBenchServer(b, body)
				specs = append(specs, targetSpec{key: fmt.Sprint(i), url: srv, engine: VLLM})
			}
			s.setTargets(specs)
			ctx := context.Background()
			s.round(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				s.round(ctx)
			}
			b.StopTimer()
			for k, r := range *s.latest.Load() {
				if r.Stale() {
					b.Fatalf("%s: %s", k, r.Err)
				}
			}
		})
	}
}

// BenchmarkParseUnfiltered parses the same response whole, as a scraper
// without the line filter would: the baseline the filter is measured
// against.
func BenchmarkParseUnfiltered(b *testing.B) {
	body := fixture(b, "vllm.prom")
	p := newParser()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		fams, err := p.text.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := extract(VLLM, fams, &dropCounts{}); err != nil {
			b.Fatal(err)
		}
	}
}
