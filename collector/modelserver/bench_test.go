package modelserver

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
)

// BenchmarkParse is the parse of realistic vLLM responses: the 20 KB
// page of llm-d-inference-sim under load (the page the routing benchmark's
// servers serve, histograms and LoRA info included) and a real vLLM's
// 86 KB page of two data-parallel engines. "scan" is the line scanner the
// agent runs; "expfmt" is the text path it replaced (the wanted lines
// copied out and handed to the Prometheus text parser), in the same run.
func BenchmarkParse(b *testing.B) {
	for _, f := range []string{"llmd-sim.prom", "vllm.prom"} {
		body := fixture(b, f)
		b.Run(f+"/scan", func(b *testing.B) {
			p := newParser()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.parse(VLLM, body, "text/plain; version=0.0.4"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(f+"/expfmt", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := referenceParse(VLLM, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRound is one scrape round over loopback: HTTP GET with a
// kept-alive connection, read, scan, parse and publish, for 1 and 8 vLLM
// pods (a full 8-GPU node), of the 20 KB llm-d-inference-sim page and of
// the 86 KB two-engine vLLM page. ns/op divided by the pods is the
// agent's cost per scrape.
func BenchmarkRound(b *testing.B) {
	for _, f := range []string{"llmd-sim.prom", "vllm.prom"} {
		body := fixture(b, f)
		for _, n := range []int{1, 8} {
			b.Run(fmt.Sprintf("%s/pods=%d", f, n), func(b *testing.B) {
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
}

// BenchmarkScrape is one scrape of one pod over loopback (GET on a
// kept-alive connection, read, parse) with the line scanner the agent
// runs ("scan") and with the text path it replaced ("expfmt"), in the
// same run. The server runs in the benchmark's process, so ns/op holds
// its side too; the difference between the two is the parser's.
func BenchmarkScrape(b *testing.B) {
	for _, f := range []string{"llmd-sim.prom", "vllm.prom"} {
		body := fixture(b, f)
		url := newBenchServer(b, body)
		for _, mode := range []string{"scan", "expfmt"} {
			b.Run(f+"/"+mode, func(b *testing.B) {
				s := newScraper(5*time.Second, testutil.Logger())
				defer s.client.CloseIdleConnections()
				t := &target{targetSpec: targetSpec{key: "k", url: url, engine: VLLM}, reader: NewReader(s.client)}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					var err error
					if mode == "scan" {
						_, err = t.reader.Read(ctx, t.url, t.engine)
					} else {
						err = fetchReference(ctx, s, t)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// fetchReference is scraper.fetch with the replaced text path.
func fetchReference(ctx context.Context, s *scraper, t *target) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := &t.reader.buf
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, MaxBodyBytes+1)); err != nil {
		return err
	}
	_, err = referenceParse(t.engine, buf.Bytes())
	return err
}
