package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// wantImmediate reads the next response and checks it is an
// ImmediateResponse with the status and a JSON error body.
func wantImmediate(t *testing.T, e *envoy, code int) {
	t.Helper()
	r := e.recv()
	ir := r.GetImmediateResponse()
	if ir == nil {
		t.Fatalf("want an ImmediateResponse %d, got %v", code, r)
	}
	if int(ir.GetStatus().GetCode()) != code {
		t.Errorf("status %d, want %d", ir.GetStatus().GetCode(), code)
	}
	var eb errorBody
	if err := json.Unmarshal(ir.GetBody(), &eb); err != nil || eb.Error.Code != code || eb.Error.Message == "" {
		t.Errorf("body %q: %v", ir.GetBody(), err)
	}
	if setHeaders(ir.GetHeaders())["content-type"] != "application/json" {
		t.Error("no content-type: application/json on the error")
	}
}

func TestSubsetHint(t *testing.T) {
	t.Parallel()
	body := []byte(`{"model":"m"}`)
	for _, tt := range []struct {
		name       string
		msgs       []*extprocv3.ProcessingRequest
		wantSubset []string
		wantDest   string // "" wants 503
		wantDecide bool
	}{
		{name: "on the last body chunk, matching", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody(body[:5], false), withSubset(reqBody(body[5:], true), "10.0.0.3:9999", "10.0.0.1:8000")},
			wantSubset: []string{"10.0.0.3:9999", "10.0.0.1:8000"}, wantDest: "10.0.0.1:8000,10.0.0.3:8000", wantDecide: true},
		{name: "on the headers only, matching", msgs: []*extprocv3.ProcessingRequest{withSubset(postHeaders(), "10.0.0.2:8000"), reqBody(body, true)},
			wantSubset: []string{"10.0.0.2:8000"}, wantDest: "10.0.0.2:8000", wantDecide: true},
		{name: "header-only request", msgs: []*extprocv3.ProcessingRequest{withSubset(reqHeaders(true, ":method", "GET"), "10.0.0.4:8000")},
			wantSubset: []string{"10.0.0.4:8000"}, wantDest: "10.0.0.4:8000", wantDecide: true},
		{name: "comma-separated string", msgs: []*extprocv3.ProcessingRequest{postHeaders(), withMeta(reqBody(body, true), namespaceSubsetHint, keySubset, "10.0.0.2:8000, 10.0.0.1:8000")},
			wantSubset: []string{"10.0.0.2:8000", "10.0.0.1:8000"}, wantDest: "10.0.0.1:8000,10.0.0.2:8000", wantDecide: true},
		{name: "not matching", msgs: []*extprocv3.ProcessingRequest{postHeaders(), withSubset(reqBody(body, true), "10.9.9.9:8000")},
			wantSubset: []string{"10.9.9.9:8000"}, wantDecide: true},
		{name: "empty", msgs: []*extprocv3.ProcessingRequest{postHeaders(), withSubset(reqBody(body, true))}},
		{name: "not a list", msgs: []*extprocv3.ProcessingRequest{postHeaders(), withMeta(reqBody(body, true), namespaceSubsetHint, keySubset, 42.0)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{eps: threeEndpoints}
			h := startServer(t, d, DefaultOptions())
			e := h.open(t)
			e.send(tt.msgs...)
			if tt.wantDest == "" {
				wantImmediate(t, e, 503)
			} else {
				hr := e.recv()
				if got := setHeaders(hr.GetRequestHeaders().GetResponse().GetHeaderMutation())[headerDestination]; got != tt.wantDest {
					t.Errorf("destination %q, want %q", got, tt.wantDest)
				}
			}
			reqs, _ := d.calls()
			if (len(reqs) == 1) != tt.wantDecide {
				t.Fatalf("Decide called %d times, want called: %v", len(reqs), tt.wantDecide)
			}
			if tt.wantDecide && !slices.Equal(reqs[0].Subset.Entries(), tt.wantSubset) {
				t.Errorf("Decide subset %v, want %q", reqs[0].Subset, tt.wantSubset)
			}
		})
	}
}

func TestDecisionErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  error
		eps  []string
		want int
	}{
		{err: fmt.Errorf("model %q: %w", "x", ErrNoEndpoint), want: 503},
		{err: fmt.Errorf("saturated: %w", ErrShed), want: 429},
		{err: fmt.Errorf("lora: %w", ErrBadRequest), want: 400},
		{err: errors.New("scorer broke"), want: 503},
		{err: context.DeadlineExceeded, want: 503},
		{eps: nil, want: 503},
		{eps: []string{" ", ""}, want: 503},
	} {
		t.Run(fmt.Sprintf("%v %q", tt.err, tt.eps), func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{decideFn: func(*Request) (Decision, error) { return Decision{Endpoints: tt.eps}, tt.err }}
			h := startServer(t, d, DefaultOptions())
			e := h.open(t)
			e.send(postHeaders(), reqBody([]byte(`{"model":"m"}`), true))
			wantImmediate(t, e, tt.want)
			if err := e.end(); err != nil {
				t.Errorf("stream end: %v", err)
			}
			_, dones := d.calls()
			// A failed Decide counted nothing: no Done. A successful one
			// whose list turned out empty is released with an error.
			wantDones := 0
			if tt.err == nil && len(tt.eps) > 0 {
				wantDones = 1
			}
			if len(dones) != wantDones || (wantDones == 1 && (dones[0].endpoint != tt.eps[0] || dones[0].outcome.Err == nil)) {
				t.Errorf("Done calls %+v, want %d (releasing %q with an error)", dones, wantDones, tt.eps)
			}
		})
	}
}

// TestBadInputs feeds the ten bad inputs: each ends with an
// ImmediateResponse (status) or, for a truncated stream, a clean close,
// and none of them is ever reported to Done.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	good := []byte(`{"model":"m","prompt":"x"}`)
	opts := DefaultOptions()
	opts.MaxBodyBytes = 4096
	unknownModel := func(r *Request) (Decision, error) {
		if r.Model != "known" {
			return Decision{}, fmt.Errorf("model %q: %w", r.Model, ErrNoEndpoint)
		}
		return Decision{Endpoints: threeEndpoints}, nil
	}
	for _, tt := range []struct {
		name       string
		msgs       []*extprocv3.ProcessingRequest
		status     int // 0: the server just ends the stream
		wantDecide bool
	}{
		{name: "non-JSON body", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody([]byte(`model=m&prompt=x`), true)}, status: 400},
		{name: "JSON array body", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody([]byte(`[{"model":"m"}]`), true)}, status: 400},
		{name: "model not a string", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody([]byte(`{"model":7}`), true)}, status: 400},
		{name: "no model", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody([]byte(`{"Model":"m","prompt":"x"}`), true)}, status: 400},
		{name: "body over the limit", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody(bytes.Repeat([]byte(" "), 3000), false), reqBody(bytes.Repeat([]byte(" "), 3000), false)}, status: 413},
		{name: "content-length over the limit", msgs: []*extprocv3.ProcessingRequest{postHeaders("content-length", "5000")}, status: 413},
		{name: "truncated stream", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody(good[:10], false)}},
		{name: "wrong content-type", msgs: []*extprocv3.ProcessingRequest{reqHeaders(false, ":method", "POST", "content-type", "text/plain")}, status: 400},
		{name: "unknown subset", msgs: []*extprocv3.ProcessingRequest{postHeaders(), withSubset(reqBody(good, true), "192.168.7.7:8000")}, status: 503, wantDecide: true},
		{name: "empty subset", msgs: []*extprocv3.ProcessingRequest{withSubset(postHeaders()), reqBody(good, true)}, status: 503},
		{name: "headers twice", msgs: []*extprocv3.ProcessingRequest{postHeaders(), postHeaders()}, status: 400},
		{name: "body before headers", msgs: []*extprocv3.ProcessingRequest{reqBody(good, true)}, status: 400},
		{name: "response before request", msgs: []*extprocv3.ProcessingRequest{respHeaders(false, ":status", "200")}, status: 400},
		{name: "unknown model", msgs: []*extprocv3.ProcessingRequest{postHeaders(), reqBody(good, true)}, status: 503, wantDecide: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{decideFn: unknownModel}
			h := startServer(t, d, opts)
			e := h.open(t)
			e.send(tt.msgs...)
			if tt.status != 0 {
				wantImmediate(t, e, tt.status)
			}
			if err := e.end(); err != nil {
				t.Errorf("stream end: %v", err)
			}
			reqs, dones := d.calls()
			if (len(reqs) > 0) != tt.wantDecide {
				t.Errorf("Decide called %d times, want called: %v", len(reqs), tt.wantDecide)
			}
			if len(dones) != 0 {
				t.Errorf("Done called for an unrouted request: %+v", dones)
			}
		})
	}
}

func TestClientDisconnects(t *testing.T) {
	t.Parallel()
	t.Run("mid-body: no decision", func(t *testing.T) {
		t.Parallel()
		d := &fakeDecider{eps: threeEndpoints}
		h := startServer(t, d, DefaultOptions())
		e := h.open(t)
		e.send(postHeaders(), reqBody([]byte(`{"model":"m",`), false))
		e.cancel()
		if err := <-h.ended; err != nil {
			t.Errorf("Process returned %v, want a clean end", err)
		}
		if reqs, dones := d.calls(); len(reqs)+len(dones) != 0 {
			t.Errorf("Decide %d, Done %d calls for a client gone mid-body", len(reqs), len(dones))
		}
	})
	t.Run("mid-response: Done with an error", func(t *testing.T) {
		t.Parallel()
		d := &fakeDecider{eps: threeEndpoints}
		h := startServer(t, d, DefaultOptions())
		e := h.open(t)
		e.send(postHeaders(), reqBody([]byte(`{"model":"m"}`), true))
		recvRouted(t, e, "10.0.0.1:8000,10.0.0.2:8000,10.0.0.3:8000", "m", DefaultChunkBytes)
		e.send(respHeaders(false, ":status", "200", "content-type", "text/event-stream"))
		e.recv()
		e.send(respBody([]byte("data: {}\n\n"), false))
		e.recv()
		e.cancel()
		<-h.ended
		_, dones := d.calls()
		if len(dones) != 1 || !errors.Is(dones[0].outcome.Err, errStreamClosed) || dones[0].outcome.Status != 200 || !dones[0].outcome.Streamed {
			t.Errorf("Done calls %+v, want one with the stream-closed error", dones)
		}
	})
	t.Run("protocol error after routing", func(t *testing.T) {
		t.Parallel()
		d := &fakeDecider{eps: threeEndpoints}
		h := startServer(t, d, DefaultOptions())
		e := h.open(t)
		e.send(reqHeaders(true, ":method", "GET"))
		e.recv()
		e.send(respBody([]byte("x"), true)) // body before response headers
		if err := e.end(); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
			t.Errorf("stream end %v, want InvalidArgument", err)
		}
		if _, dones := d.calls(); len(dones) != 1 || !errors.Is(dones[0].outcome.Err, errProtocol) {
			t.Errorf("Done calls %+v", dones)
		}
	})
}
