package extproc

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// patience bounds every wait for something that must happen; no test
// asserts how long a thing takes.
const patience = 30 * time.Second

// wantEnded reads until the server ends the stream, without Envoy closing
// its side, and checks the gRPC status code.
func wantEnded(t *testing.T, e *envoy, code codes.Code) {
	t.Helper()
	r, err := e.s.Recv()
	switch {
	case err == nil:
		t.Fatalf("want the stream ended with %s, got %v", code, r)
	case code == codes.OK && !errors.Is(err, io.EOF):
		t.Fatalf("stream ended with %v, want a clean end", err)
	case code != codes.OK && status.Code(err) != code:
		t.Fatalf("stream ended with %v, want %s", err, code)
	}
}

// eventually polls cond until it holds or patience runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, patience, what, cond)
}

// wantRetryAfter checks a 429 ImmediateResponse carries Retry-After.
func wantRetryAfter(t *testing.T, r *extprocv3.ProcessingResponse) {
	t.Helper()
	ir := r.GetImmediateResponse()
	if ir == nil || ir.GetStatus().GetCode() != 429 {
		t.Fatalf("want a 429 ImmediateResponse, got %v", r)
	}
	if s, err := strconv.Atoi(setHeaders(ir.GetHeaders())["retry-after"]); err != nil || s < 1 {
		t.Errorf("429 without a Retry-After of whole seconds: %v", setHeaders(ir.GetHeaders()))
	}
}

func shortDeadlines() Options {
	o := DefaultOptions()
	o.RequestIdleTimeout, o.ResponseTimeout, o.ResponseIdleTimeout = 150*time.Millisecond, 150*time.Millisecond, 150*time.Millisecond
	return o
}

// TestPhaseDeadlines: a stream that goes quiet in any phase is ended, and
// a pick it held is released (Done with an error), so in-flight counts
// come back down; a stream that keeps talking is not cut however long it
// lasts.
func TestPhaseDeadlines(t *testing.T) {
	t.Parallel()
	body := []byte(`{"model":"m"}`)
	for _, tt := range []struct {
		name string
		// drive plays Envoy up to the silence.
		drive     func(t *testing.T, e *envoy)
		wantCode  codes.Code // how the stream ends
		want408   bool       // an ImmediateResponse 408 first
		wantErr   error      // Done's error; nil: no Done
		wantPhase string
	}{
		{name: "no request headers", drive: func(*testing.T, *envoy) {}, wantCode: codes.DeadlineExceeded, wantPhase: "awaiting_request_headers"},
		{name: "body stalls", drive: func(_ *testing.T, e *envoy) {
			e.send(postHeaders("content-length", "1000"), reqBody(body[:5], false))
		}, want408: true, wantCode: codes.OK, wantPhase: "buffering_request_body"},
		{name: "header-only pick never answered", drive: func(t *testing.T, e *envoy) {
			e.send(reqHeaders(true, ":method", "GET", "x-gateway-model-name", "m"))
			if e.recv().GetRequestHeaders() == nil {
				t.Fatal("not routed")
			}
		}, wantCode: codes.DeadlineExceeded, wantErr: errPickExpired, wantPhase: "awaiting_response_headers"},
		{name: "response body stalls", drive: func(t *testing.T, e *envoy) {
			e.send(postHeaders(), reqBody(body, true))
			recvRouted(t, e, "10.0.0.1:8000", "m", DefaultChunkBytes)
			e.send(respHeaders(false, ":status", "200", "content-type", "text/event-stream"))
			e.recv()
			e.send(respBody([]byte("data: {}\n\n"), false))
			e.recv()
		}, wantCode: codes.DeadlineExceeded, wantErr: errResponseIdle, wantPhase: "streaming_response_body"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{eps: threeEndpoints[:1]}
			srv, err := New(d, shortDeadlines(), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := startGRPC(t, srv)
			e := h.open(t)
			tt.drive(t, e)
			if tt.want408 {
				wantImmediate(t, e, 408)
			}
			wantEnded(t, e, tt.wantCode)
			<-h.ended
			_, dones := d.calls()
			if tt.wantErr == nil && len(dones) != 0 || tt.wantErr != nil && (len(dones) != 1 || !errors.Is(dones[0].outcome.Err, tt.wantErr)) {
				t.Errorf("Done calls %+v, want one with %v", dones, tt.wantErr)
			}
			st := srv.Stats()
			if st.Expired[tt.wantPhase] != 1 || st.Streams != 0 || st.BufferedBytes != 0 {
				t.Errorf("stats %+v: want one expiry in %s, no stream, nothing buffered", st, tt.wantPhase)
			}
		})
	}
	t.Run("a slow body that keeps coming is not cut", func(t *testing.T) {
		t.Parallel()
		d := &fakeDecider{eps: threeEndpoints[:1]}
		h := startServer(t, d, shortDeadlines())
		e := h.open(t)
		big := chatBody(2000)
		e.send(postHeaders())
		parts := split(big, 8) // 8 gaps of 50 ms: longer than the idle timeout in all
		for i, p := range parts {
			time.Sleep(50 * time.Millisecond)
			e.send(reqBody(p, i == len(parts)-1))
		}
		if got := recvRouted(t, e, "10.0.0.1:8000", "llama-3-8b", DefaultChunkBytes); !bytes.Equal(got, big) {
			t.Error("body differs")
		}
	})
}

// TestHeldPicksReleased reproduces the held-pick attack in miniature: many
// header-only requests routed and never answered hold their picks only
// until the response timeout, and every one is released.
func TestHeldPicksReleased(t *testing.T) {
	t.Parallel()
	d := &fakeDecider{eps: threeEndpoints[:1]}
	srv, err := New(d, shortDeadlines(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := startGRPC(t, srv)
	const held = 50
	for range held {
		e := h.open(t)
		e.send(reqHeaders(true, ":method", "GET", "x-gateway-model-name", "m"))
		e.recv()
	}
	eventually(t, "every held pick released", func() bool {
		_, dones := d.calls()
		return len(dones) == held
	})
	_, dones := d.calls()
	for _, dc := range dones {
		if !errors.Is(dc.outcome.Err, errPickExpired) || dc.endpoint != "10.0.0.1:8000" {
			t.Fatalf("Done(%q, %+v), want the pick released as expired", dc.endpoint, dc.outcome)
		}
	}
	eventually(t, "no stream left", func() bool { return srv.Stats().Streams == 0 })
}

func TestMaxStreams(t *testing.T) {
	t.Parallel()
	d := &fakeDecider{eps: threeEndpoints[:1]}
	opts := DefaultOptions()
	opts.MaxStreams = 2
	srv, err := New(d, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := startGRPC(t, srv)
	a, b := h.open(t), h.open(t)
	a.send(postHeaders())
	b.send(postHeaders())
	eventually(t, "two streams served", func() bool { return srv.Stats().Streams == 2 })

	c := h.open(t)
	c.send(postHeaders())
	wantRetryAfter(t, c.recv())
	if err := c.end(); err != nil {
		t.Errorf("refused stream end: %v", err)
	}
	if n := srv.Stats().Refused["too_many_streams"]; n != 1 {
		t.Errorf("refused too_many_streams %d, want 1", n)
	}

	a.send(reqBody([]byte(`{"model":"m"}`), true))
	recvRouted(t, a, "10.0.0.1:8000", "m", DefaultChunkBytes)
	a.send(respHeaders(true, ":status", "200"))
	a.recv()
	if err := a.end(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a's slot free", func() bool { return srv.Stats().Streams == 1 })
	e := h.open(t)
	e.send(postHeaders(), reqBody([]byte(`{"model":"m"}`), true))
	recvRouted(t, e, "10.0.0.1:8000", "m", DefaultChunkBytes)
}

// TestServedEndpointMustBeRouted: the response phase's served endpoint
// (which trains the speed learner) is taken only when it is one the
// stream was routed to.
func TestServedEndpointMustBeRouted(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, served, want string
		mismatch           uint64
	}{
		{name: "the primary", served: "10.0.0.1:8000", want: "10.0.0.1:8000"},
		{name: "a fallback", served: "10.0.0.3:8000", want: "10.0.0.3:8000"},
		{name: "a fallback, spaced", served: " 10.0.0.2:8000 ", want: "10.0.0.2:8000"},
		{name: "an endpoint never sent", served: "10.9.9.9:8000", want: "10.0.0.1:8000", mismatch: 1},
		{name: "a routed IP on another port", served: "10.0.0.2:9999", want: "10.0.0.1:8000", mismatch: 1},
		{name: "garbage", served: "not an endpoint", want: "10.0.0.1:8000", mismatch: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{eps: threeEndpoints[:3]}
			srv, err := New(d, DefaultOptions(), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := startGRPC(t, srv)
			e := h.open(t)
			e.send(postHeaders(), reqBody([]byte(`{"model":"m"}`), true))
			recvRouted(t, e, "10.0.0.1:8000,10.0.0.2:8000,10.0.0.3:8000", "m", DefaultChunkBytes)
			e.send(withMeta(respHeaders(true, ":status", "200"), namespaceLB, keyServed, tt.served))
			rh := e.recv()
			echo, echoed := lbValue(rh, keyServed)
			if tt.mismatch == 0 && echo != tt.want || tt.mismatch > 0 && echoed {
				t.Errorf("served metadata echoed %q (%v)", echo, echoed)
			}
			if err := e.end(); err != nil {
				t.Fatal(err)
			}
			_, dones := d.calls()
			if len(dones) != 1 || dones[0].outcome.Served != tt.want {
				t.Fatalf("Done %+v, want served %s", dones, tt.want)
			}
			if got := srv.Stats().ServedMismatch; got != tt.mismatch {
				t.Errorf("served mismatches %d, want %d", got, tt.mismatch)
			}
		})
	}
}

func TestBadModelNames(t *testing.T) {
	t.Parallel()
	long := string(bytes.Repeat([]byte("m"), MaxModelBytes))
	for _, tt := range []struct {
		name   string
		header string // x-gateway-model-name; "" for none
		body   string
		ok     bool
	}{
		{name: "newline in the body", body: `{"model":"llama\nx-evil: 1"}`},
		{name: "NUL in the body", body: `{"model":"llama\u0000"}`},
		{name: "DEL in the body", body: "{\"model\":\"llama\x7f\"}"},
		{name: "C1 control in the body", body: `{"model":"llama\u0085"}`},
		{name: "one byte too long", body: `{"model":"` + long + `m"}`},
		{name: "as long as allowed", body: `{"model":"` + long + `"}`, ok: true},
		{name: "unicode is fine", body: `{"model":"llama-日本語"}`, ok: true},
		{name: "control in the header", header: "llama\x01", body: `{"prompt":"x"}`},
		{name: "invalid UTF-8 in the header", header: "llama\xff", body: `{"prompt":"x"}`},
		{name: "tab in the header", header: "llama\tx", body: `{"prompt":"x"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{eps: threeEndpoints[:1]}
			srv, err := New(d, DefaultOptions(), nil)
			if err != nil {
				t.Fatal(err)
			}
			h := startGRPC(t, srv)
			e := h.open(t)
			var kv []string
			if tt.header != "" {
				kv = []string{headerModel, tt.header}
			}
			e.send(postHeaders(kv...), reqBody([]byte(tt.body), true))
			if tt.ok {
				if e.recv().GetRequestHeaders() == nil {
					t.Fatal("a valid model name was not routed")
				}
				return
			}
			wantImmediate(t, e, 400)
			if reqs, _ := d.calls(); len(reqs) != 0 {
				t.Errorf("Decide saw the bad model name %q", reqs[0].Model)
			}
			if n := srv.Stats().Refused["invalid_model"]; n != 1 {
				t.Errorf("refused invalid_model %d, want 1", n)
			}
		})
	}
}

// TestServerOptions lists what Validate refuses.
func TestValidateLimits(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"no streams", func(o *Options) { o.MaxStreams = 0 }, "max-streams"},
		{"budget under one body", func(o *Options) { o.MaxBufferedBytes = int64(o.MaxBodyBytes) - 1 }, "max-buffered-bytes"},
		{"zero idle timeout", func(o *Options) { o.RequestIdleTimeout = 0 }, "request-idle-timeout"},
		{"negative response timeout", func(o *Options) { o.ResponseTimeout = -time.Second }, "response-timeout"},
		{"keepalive over a day", func(o *Options) { o.KeepaliveTime = 25 * time.Hour }, "keepalive-time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.edit(&o)
			if err := o.Validate(); err == nil || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if n := len(o.GRPCServerOptions()); n != 5 {
		t.Errorf("%d gRPC server options", n)
	}
}
