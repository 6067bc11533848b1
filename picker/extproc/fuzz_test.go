package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/headroom-dev/headroom/internal/testutil"

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
// targets drive Process without a network. With hold set, a drained list
// does not end the stream: Recv waits until hold is closed (a client that
// stalls), after closing drained.
type fakeStream struct {
	grpc.ServerStream
	ctx     context.Context
	in      []*extprocv3.ProcessingRequest
	sent    []*extprocv3.ProcessingResponse
	hold    chan struct{}
	drained chan struct{}
}

func (s *fakeStream) Context() context.Context { return s.ctx }

func (s *fakeStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if len(s.in) == 0 {
		if s.hold != nil {
			close(s.drained)
			<-s.hold
			s.hold = nil
		}
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
			cl := n
			if op&0x80 != 0 {
				cl <<= 12 // up to 1 MiB: over the fuzz targets' body limit
			}
			r = reqHeaders(eos, ":method", "POST", "content-type", "application/json", "content-length", strconv.Itoa(cl))
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
			r = withMeta(r, namespaceLB, keyServed, servedChoices[n%len(servedChoices)])
		}
		out = append(out, r)
	}
	return out
}

// servedChoices are what a response phase may claim served it: endpoints
// the stream was or was not routed to, and garbage.
var servedChoices = []string{"10.0.0.2:8000", "10.0.0.9:8000", "10.0.0.1:1", "[::1]:8000", "x", ""}

// FuzzProcess feeds fuzzed message sequences to Process. It must never
// panic; the stream ends cleanly or with InvalidArgument; an
// ImmediateResponse is the last thing sent, with a status the protocol
// allows; Done is called exactly once for a routed request and never
// otherwise, naming as served only an endpoint the request was sent to;
// nothing stays counted against the budget.
func FuzzProcess(f *testing.F) {
	f.Add([]byte{0x00, 0, 0x12, 20, 0x35, 0, 0x16, 5}, []byte(`{"model":"m","x":1}hello`))
	f.Add([]byte{0x11, 1, 0x05, 0, 0x06, 3, 0x07, 0}, []byte("mdata: x\n"))
	f.Add([]byte{0x00, 0, 0x02, 4, 0x04, 0, 0x85, 0, 0x16, 9}, []byte(`{"a":{"model":"m"}}`))
	f.Add([]byte{0x02, 3, 0x00, 0, 0x00, 0}, []byte("abc"))
	f.Add([]byte{0x11, 0, 0x75, 1, 0x16, 0}, []byte("m"))
	f.Add([]byte{0x80, 200, 0x02, 200}, []byte(`{"model":"m"}`))
	f.Fuzz(func(t *testing.T, ops, pool []byte) {
		d := &fakeDecider{eps: threeEndpoints}
		srv := fuzzServer(t, d, 1<<20)
		fs := &fakeStream{ctx: context.Background(), in: decodeMessages(ops, pool)}
		perr := srv.Process(fs)
		if perr != nil && status.Code(perr) != codes.InvalidArgument {
			t.Fatalf("Process: %v", perr)
		}
		checkStream(t, fs.sent)
		reqs, dones := d.calls()
		routed := len(fs.sent) > 0 && fs.sent[0].GetRequestHeaders() != nil
		if len(reqs) > 1 || (routed && len(dones) != 1) || (!routed && len(dones) != 0) {
			t.Fatalf("routed %v: Decide %d, Done %d calls", routed, len(reqs), len(dones))
		}
		checkServed(t, fs.sent, dones)
		if st := srv.Stats(); st.BufferedBytes != 0 || st.Streams != 0 {
			t.Fatalf("after the stream: %d bytes, %d streams still counted", st.BufferedBytes, st.Streams)
		}
	})
}

// FuzzStreams feeds a sequence of streams, cut from the fuzz input at
// each 0xff op, to one server with a small budget and stream limit. Each
// stream sends its messages and then stalls, holding what it holds, while
// the next one runs; at the end all go away. The budget and the stream
// limit are never passed, every stream follows FuzzProcess's rules, and
// once every stream has ended nothing is held or counted.
func FuzzStreams(f *testing.F) {
	f.Add([]byte{0x00, 0, 0x02, 200, 0xff, 0x00, 0, 0x02, 200, 0xff, 0x00, 0, 0x12, 20}, bytes.Repeat([]byte(`{"model":"m"}`), 40))
	f.Add([]byte{0x11, 1, 0xff, 0x11, 1, 0xff, 0x11, 1, 0xff, 0x11, 1}, []byte("mmmm"))
	f.Add([]byte{0x80, 255, 0x02, 255, 0x02, 255, 0xff, 0x00, 0, 0x12, 13}, bytes.Repeat([]byte("{}"), 300))
	f.Fuzz(func(t *testing.T, ops, pool []byte) {
		const budget = 4096
		d := &fakeDecider{eps: threeEndpoints}
		srv := fuzzServer(t, d, budget)
		hold := make(chan struct{})
		var wg sync.WaitGroup
		var streams []*fakeStream
		for i, part := range bytes.Split(ops, []byte{0xff}) {
			if i == 8 {
				break
			}
			fs := &fakeStream{ctx: context.Background(), in: decodeMessages(part, pool), hold: hold, drained: make(chan struct{})}
			streams = append(streams, fs)
			ended := make(chan struct{})
			wg.Go(func() { _ = srv.Process(fs); close(ended) })
			select { // until it stalls, or ends by itself
			case <-fs.drained:
			case <-ended:
			}
			if st := srv.Stats(); st.BufferedBytes > budget || st.Streams > int64(srv.opts.MaxStreams) {
				t.Fatalf("stream %d: %d bytes held (budget %d), %d streams (limit %d)", i, st.BufferedBytes, budget, st.Streams, srv.opts.MaxStreams)
			}
		}
		close(hold)
		wg.Wait()
		for _, fs := range streams {
			checkStream(t, fs.sent)
		}
		_, dones := d.calls()
		routed := 0
		for _, fs := range streams {
			if len(fs.sent) > 0 && fs.sent[0].GetRequestHeaders() != nil {
				routed++
			}
		}
		if len(dones) != routed {
			t.Fatalf("%d streams routed, %d Done calls", routed, len(dones))
		}
		if st := srv.Stats(); st.BufferedBytes != 0 || st.Streams != 0 {
			t.Fatalf("after every stream ended: %d bytes, %d streams still counted", st.BufferedBytes, st.Streams)
		}
	})
}

func fuzzServer(t *testing.T, d Decider, budget int64) *Server {
	t.Helper()
	opts := DefaultOptions()
	opts.MaxBodyBytes, opts.ChunkBytes, opts.MaxBufferedBytes, opts.MaxStreams = 1024, 1024, budget, 4
	srv, err := New(d, opts, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// checkStream: an ImmediateResponse is the last message and has a status
// the picker may answer with.
func checkStream(t *testing.T, sent []*extprocv3.ProcessingResponse) {
	t.Helper()
	for i, r := range sent {
		ir := r.GetImmediateResponse()
		if ir == nil {
			continue
		}
		if i != len(sent)-1 {
			t.Fatalf("message %d of %d sent after an ImmediateResponse", i+1, len(sent))
		}
		switch code := ir.GetStatus().GetCode(); code {
		case 400, 408, 413, 503:
		case 429:
			if setHeaders(ir.GetHeaders())["retry-after"] == "" && !bytes.Contains(ir.GetBody(), []byte("shed")) {
				t.Fatalf("429 without Retry-After: %s", ir.GetBody())
			}
		default:
			t.Fatalf("ImmediateResponse %d", code)
		}
	}
}

// checkServed: Done names as served only an endpoint the destination
// header carried.
func checkServed(t *testing.T, sent []*extprocv3.ProcessingResponse, dones []doneCall) {
	t.Helper()
	if len(dones) == 0 || len(sent) == 0 {
		return
	}
	dest := setHeaders(sent[0].GetRequestHeaders().GetResponse().GetHeaderMutation())[headerDestination]
	if s := dones[0].outcome.Served; !slices.Contains(strings.Split(dest, ","), s) {
		t.Fatalf("Done names %q as served; the request was sent to %q", s, dest)
	}
}
