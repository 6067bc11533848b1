package extproc

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/headroom-dev/headroom/internal/testutil"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeDecider records every call and answers with decideFn (default: the
// endpoints in eps).
type fakeDecider struct {
	mu       sync.Mutex
	eps      []string
	decideFn func(*Request) (Decision, error)
	requests []Request
	dones    []doneCall
}

type doneCall struct {
	endpoint string
	outcome  Outcome
}

func (f *fakeDecider) Decide(_ context.Context, r *Request) (Decision, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := *r
	c.Body = slices.Clone(r.Body)
	f.requests = append(f.requests, c)
	if f.decideFn != nil {
		return f.decideFn(r)
	}
	return Decision{Endpoints: f.eps}, nil
}

func (f *fakeDecider) Done(endpoint string, o Outcome) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dones = append(f.dones, doneCall{endpoint, o})
}

func (f *fakeDecider) calls() ([]Request, []doneCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests), slices.Clone(f.dones)
}

// harness is a real gRPC server on 127.0.0.1:0 and a client. ended gets
// the result of each Process call once it returned (a stream interceptor
// reports it), so a test can wait for the server side to finish.
type harness struct {
	client extprocv3.ExternalProcessorClient
	ended  chan error
}

func startServer(t testing.TB, d Decider, opts Options, so ...ServerOption) *harness {
	t.Helper()
	srv, err := New(d, opts, testutil.Logger(), so...)
	if err != nil {
		t.Fatal(err)
	}
	return startGRPC(t, srv)
}

func startGRPC(t testing.TB, impl extprocv3.ExternalProcessorServer) *harness {
	t.Helper()
	h := &harness{ended: make(chan error, 1024)}
	gs := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		select {
		case h.ended <- err:
		default:
		}
		return err
	}))
	extprocv3.RegisterExternalProcessorServer(gs, impl)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	h.client = extprocv3.NewExternalProcessorClient(cc)
	return h
}

// envoy plays Envoy's side of one stream, message by message.
type envoy struct {
	t      testing.TB
	s      extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc
}

func (h *harness) open(t testing.TB) *envoy {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := h.client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &envoy{t: t, s: s, cancel: cancel}
}

func (e *envoy) send(reqs ...*extprocv3.ProcessingRequest) {
	e.t.Helper()
	for _, r := range reqs {
		if err := e.s.Send(r); err != nil {
			e.t.Fatalf("send: %v", err)
		}
	}
}

func (e *envoy) recv() *extprocv3.ProcessingResponse {
	e.t.Helper()
	r, err := e.s.Recv()
	if err != nil {
		e.t.Fatalf("recv: %v", err)
	}
	return r
}

// end closes Envoy's side and expects the server to end the stream with
// no further message; it returns the stream's final error (nil: clean).
func (e *envoy) end() error {
	e.t.Helper()
	_ = e.s.CloseSend()
	r, err := e.s.Recv()
	if err == nil {
		e.t.Fatalf("unexpected message after the end: %v", r)
	}
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// --- request builders (what Envoy sends) ---

func headers(eos bool, kv ...string) *extprocv3.HttpHeaders {
	hm := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.HttpHeaders{Headers: hm, EndOfStream: eos}
}

func reqHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: headers(eos, kv...)}}
}

func postHeaders(kv ...string) *extprocv3.ProcessingRequest {
	return reqHeaders(false, append([]string{":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json", "x-request-id", "r-1"}, kv...)...)
}

func reqBody(b []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: b, EndOfStream: eos}}}
}

func reqTrailers() *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}}
}

func respHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(eos, kv...)}}
}

func respBody(b []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: b, EndOfStream: eos}}}
}

// withMeta adds filter_metadata[ns][key] = value to the message.
func withMeta(r *extprocv3.ProcessingRequest, ns, key string, value any) *extprocv3.ProcessingRequest {
	v, err := structpb.NewValue(value)
	if err != nil {
		panic(err)
	}
	r.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{ns: {Fields: map[string]*structpb.Value{key: v}}}}
	return r
}

func withSubset(r *extprocv3.ProcessingRequest, eps ...string) *extprocv3.ProcessingRequest {
	l := make([]any, len(eps))
	for i, e := range eps {
		l[i] = e
	}
	return withMeta(r, namespaceSubsetHint, keySubset, l)
}

// split cuts b into n chunks of nearly equal size.
func split(b []byte, n int) [][]byte {
	var out [][]byte
	size := (len(b) + n - 1) / n
	for len(b) > 0 {
		k := min(size, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

// --- response readers (what the server answers) ---

// setHeaders returns a response's header mutation as a map.
func setHeaders(m *extprocv3.HeaderMutation) map[string]string {
	out := map[string]string{}
	for _, h := range m.GetSetHeaders() {
		out[h.GetHeader().GetKey()] = string(h.GetHeader().GetRawValue())
	}
	return out
}

// lbValue reads dynamic_metadata["envoy.lb"][key].
func lbValue(r *extprocv3.ProcessingResponse, key string) (string, bool) {
	v, ok := r.GetDynamicMetadata().GetFields()[namespaceLB].GetStructValue().GetFields()[key]
	return v.GetStringValue(), ok
}

// streamed returns a body response's streamed chunk, failing when the
// response is something else.
func streamed(t testing.TB, r *extprocv3.ProcessingResponse, request bool) *extprocv3.StreamedBodyResponse {
	t.Helper()
	b := r.GetResponseBody()
	if request {
		b = r.GetRequestBody()
	}
	sb := b.GetResponse().GetBodyMutation().GetStreamedResponse()
	if sb == nil {
		t.Fatalf("want a streamed body response (request=%v), got %v", request, r)
	}
	return sb
}
