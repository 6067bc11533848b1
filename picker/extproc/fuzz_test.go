package extproc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FuzzParseModel checks parseModel against encoding/json decoding the
// body into a map: same validity, same top-level "model".
func FuzzParseModel(f *testing.F) {
	for _, s := range []string{`{"model":"m","messages":[{"role":"user","content":"}"}]}`, `{"mod\u0065l":"x"}`, `[1]`, `{"model":3}`, `{"a":{"model":"b"},"model":"c"}`, ` {} `, `x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseModel(body)
		var doc any
		if json.Unmarshal(body, &doc) != nil {
			if err == nil {
				t.Fatalf("parseModel accepted invalid JSON %q", body)
			}
			return
		}
		obj, isObj := doc.(map[string]any)
		if !isObj {
			if !errors.Is(err, errNotObject) {
				t.Fatalf("non-object %q: %v", body, err)
			}
			return
		}
		want, isString := obj["model"].(string)
		if _, present := obj["model"]; present && !isString {
			if err == nil {
				t.Fatalf("%q: non-string model accepted as %q", body, got)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("%q: parseModel = %q, %v; want %q", body, got, err, want)
		}
	})
}

// fakeStream is the server side of a stream fed from a list: the fuzz
// target drives Process without a network.
type fakeStream struct {
	grpc.ServerStream
	ctx  context.Context
	in   []*extprocv3.ProcessingRequest
	sent []*extprocv3.ProcessingResponse
}

func (s *fakeStream) Context() context.Context { return s.ctx }

func (s *fakeStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if len(s.in) == 0 {
		return nil, io.EOF
	}
	r := s.in[0]
	s.in = s.in[1:]
	return r, nil
}

func (s *fakeStream) Send(r *extprocv3.ProcessingResponse) error {
	s.sent = append(s.sent, r)
	return nil
}

// decodeMessages turns fuzz bytes into a sequence of ProcessingRequests:
// each op byte picks a kind, end_of_stream and metadata; the next byte is
// a body length taken from the pool.
func decodeMessages(ops, pool []byte) []*extprocv3.ProcessingRequest {
	var out []*extprocv3.ProcessingRequest
	for len(ops) >= 2 && len(out) < 32 {
		op, n := ops[0], int(ops[1])
		ops = ops[2:]
		n = min(n, len(pool))
		chunk := pool[:n]
		pool = pool[n:]
		eos := op&0x10 != 0
		var r *extprocv3.ProcessingRequest
		switch op % 8 {
		case 0:
			r = reqHeaders(eos, ":method", "POST", "content-type", "application/json")
		case 1:
			r = reqHeaders(eos, ":method", "GET", "x-gateway-model-name", string(chunk))
		case 2, 3:
			r = reqBody(chunk, eos)
		case 4:
			r = reqTrailers()
		case 5:
			r = respHeaders(eos, ":status", "200", "content-type", []string{"text/event-stream", "application/json"}[op>>7])
		case 6:
			r = respBody(chunk, eos)
		case 7:
			r = &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}}
		}
		switch op & 0x60 {
		case 0x20:
			r = withSubset(r, "10.0.0.1:8000")
		case 0x40:
			r = withSubset(r)
		case 0x60:
			r = withMeta(r, namespaceLB, keyServed, "10.0.0.2:8000")
		}
		out = append(out, r)
	}
	return out
}

// FuzzProcess feeds fuzzed message sequences to Process. It must never
// panic; the stream ends cleanly or with InvalidArgument; an
// ImmediateResponse is the last thing sent; Done is called exactly once
// for a routed request and never otherwise.
func FuzzProcess(f *testing.F) {
	f.Add([]byte{0x00, 0, 0x12, 20, 0x35, 0, 0x16, 5}, []byte(`{"model":"m","x":1}hello`))
	f.Add([]byte{0x11, 1, 0x05, 0, 0x06, 3, 0x07, 0}, []byte("mdata: x\n"))
	f.Add([]byte{0x00, 0, 0x02, 4, 0x04, 0, 0x85, 0, 0x16, 9}, []byte(`{"a":{"model":"m"}}`))
	f.Add([]byte{0x02, 3, 0x00, 0, 0x00, 0}, []byte("abc"))
	f.Fuzz(func(t *testing.T, ops, pool []byte) {
		d := &fakeDecider{eps: threeEndpoints}
		opts := DefaultOptions()
		opts.MaxBodyBytes, opts.ChunkBytes = 1024, 1024
		srv, err := New(d, opts, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		fs := &fakeStream{ctx: context.Background(), in: decodeMessages(ops, pool)}
		perr := srv.Process(fs)
		if perr != nil && status.Code(perr) != codes.InvalidArgument {
			t.Fatalf("Process: %v", perr)
		}
		for i, r := range fs.sent {
			if r.GetImmediateResponse() != nil && i != len(fs.sent)-1 {
				t.Fatalf("message %d of %d sent after an ImmediateResponse", i+1, len(fs.sent))
			}
		}
		reqs, dones := d.calls()
		routed := len(fs.sent) > 0 && fs.sent[0].GetRequestHeaders() != nil
		if len(reqs) > 1 || (routed && len(dones) != 1) || (!routed && len(dones) != 0) {
			t.Fatalf("routed %v: Decide %d, Done %d calls", routed, len(reqs), len(dones))
		}
	})
}
