package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

type trivialDecider struct{}

func (trivialDecider) Decide(context.Context, *Request) (Decision, error) {
	return Decision{Endpoints: threeEndpoints}, nil
}
func (trivialDecider) Done(string, Outcome) {}

// roundTrip plays one request through a stream as Envoy would: headers
// and the body in 16 KiB chunks (sent from a goroutine, as Envoy does not
// wait), then the response headers and a small JSON body.
func roundTrip(ctx context.Context, c extprocv3.ExternalProcessorClient, hdr *extprocv3.ProcessingRequest, body []byte, resp []*extprocv3.ProcessingRequest) error {
	s, err := c.Process(ctx)
	if err != nil {
		return err
	}
	sent := make(chan error, 1)
	go func() {
		err := s.Send(hdr)
		parts := split(body, (len(body)+16383)/16384)
		for i := 0; err == nil && i < len(parts); i++ {
			err = s.Send(reqBody(parts[i], i == len(parts)-1))
		}
		sent <- err
	}()
	for eos := false; !eos; {
		r, err := s.Recv()
		if err != nil {
			return fmt.Errorf("request phase: %w", err)
		}
		eos = r.GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse().GetEndOfStream()
	}
	if err := <-sent; err != nil {
		return err
	}
	for _, m := range resp {
		if err := s.Send(m); err != nil {
			return err
		}
		if _, err := s.Recv(); err != nil {
			return fmt.Errorf("response phase: %w", err)
		}
	}
	_ = s.CloseSend()
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("end: %v", err)
	}
	return nil
}

// BenchmarkDecisionPath runs whole requests through the real gRPC server
// with a trivial Decider, and through the pass-through baseline in the same
// run. Metrics: allocB/bodyB is bytes allocated per request (client and
// server, the whole process) over the body size; the picker's sub-benchmark
// adds x-baseline-ns and x-baseline-B (its cost over the baseline's) and
// added-B/bodyB ((picker - baseline) bytes over the body size).
func BenchmarkDecisionPath(b *testing.B) {
	for _, size := range []int{4 << 10, 220 << 10} {
		body := chatBody(size)
		hdr := postHeaders("content-length", strconv.Itoa(len(body)))
		resp := []*extprocv3.ProcessingRequest{
			respHeaders(false, ":status", "200", "content-type", "application/json"),
			respBody([]byte(`{"choices":[],"usage":{"prompt_tokens":900,"completion_tokens":20}}`), true),
		}
		var baseNs, baseB float64
		for _, impl := range []string{"passthrough", "picker"} {
			b.Run(fmt.Sprintf("body=%dKB/server=%s", size>>10, impl), func(b *testing.B) {
				var h *harness
				if impl == "picker" {
					h = startServer(b, trivialDecider{}, DefaultOptions())
				} else {
					h = startGRPC(b, PassThrough{})
				}
				ctx := context.Background()
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				n := 0
				for b.Loop() {
					if err := roundTrip(ctx, h.client, hdr, body, resp); err != nil {
						b.Fatal(err)
					}
					n++
				}
				runtime.ReadMemStats(&after)
				perOp := float64(after.TotalAlloc-before.TotalAlloc) / float64(n)
				nsOp := float64(b.Elapsed().Nanoseconds()) / float64(n)
				b.ReportMetric(perOp/float64(len(body)), "allocB/bodyB")
				if impl == "passthrough" {
					baseNs, baseB = nsOp, perOp
				} else if baseNs > 0 {
					b.ReportMetric(nsOp/baseNs, "x-baseline-ns")
					b.ReportMetric(perOp/baseB, "x-baseline-B")
					b.ReportMetric((perOp-baseB)/float64(len(body)), "added-B/bodyB")
				}
			})
		}
	}
}
