package extproc

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

var threeEndpoints = []string{"10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000", "10.0.0.4:8000"}

// chatBody returns a chat completion request of at least size bytes.
func chatBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"model":"llama-3-8b","stream":false,"messages":[`)
	for i := 0; b.Len() < size-64; i++ {
		fmt.Fprintf(&b, `{"role":"user","content":"message %d: the quick brown fox jumps over the lazy dog"},`, i)
	}
	b.WriteString(`{"role":"user","content":"end"}]}`)
	return b.Bytes()
}

// recvRouted reads the request-headers response and the body chunks, checks
// them, and returns the body the server sent on.
func recvRouted(t *testing.T, e *envoy, wantDest, wantModel string, chunkSize int) []byte {
	t.Helper()
	hr := e.recv()
	common := hr.GetRequestHeaders().GetResponse()
	if common == nil {
		t.Fatalf("first response is not a request-headers response: %v", hr)
	}
	if !common.GetClearRouteCache() {
		t.Error("clear_route_cache is false")
	}
	set := setHeaders(common.GetHeaderMutation())
	if got := set[headerDestination]; got != wantDest {
		t.Errorf("%s = %q, want %q", headerDestination, got, wantDest)
	}
	if got, _ := lbValue(hr, keyDestination); got != wantDest {
		t.Errorf("dynamic metadata envoy.lb/%s = %q, want %q", keyDestination, got, wantDest)
	}
	if got, ok := set[headerModel]; (wantModel != "") != ok || got != wantModel {
		t.Errorf("%s = %q (set %v), want %q", headerModel, got, ok, wantModel)
	}
	var body []byte
	for {
		sb := streamed(t, e.recv(), true)
		if len(sb.GetBody()) > chunkSize {
			t.Errorf("body chunk of %d bytes, over %d", len(sb.GetBody()), chunkSize)
		}
		body = append(body, sb.GetBody()...)
		if sb.GetEndOfStream() {
			break
		}
		if len(sb.GetBody()) != chunkSize {
			t.Errorf("chunk before the last has %d bytes, want %d", len(sb.GetBody()), chunkSize)
		}
	}
	if cl := set["content-length"]; cl != strconv.Itoa(len(body)) {
		t.Errorf("content-length = %q, body sent on is %d bytes", cl, len(body))
	}
	return body
}

func TestChatCompletionInChunks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		size     int
		chunks   int
		clHeader bool
	}{
		{name: "small body in 3 chunks", size: 600, chunks: 3, clHeader: true},
		{name: "150 KB in 9 chunks, re-chunked at 62000", size: 150_000, chunks: 9, clHeader: true},
		{name: "150 KB without content-length", size: 150_000, chunks: 7},
		{name: "one chunk", size: 300, chunks: 1, clHeader: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{eps: threeEndpoints}
			h := startServer(t, d, DefaultOptions())
			e := h.open(t)
			body := chatBody(tt.size)
			kv := []string{"x-gateway-inference-objective", "chat"}
			if tt.clHeader {
				kv = append(kv, "content-length", strconv.Itoa(len(body)))
			}
			e.send(postHeaders(kv...))
			parts := split(body, tt.chunks)
			for i, p := range parts {
				e.send(reqBody(p, i == len(parts)-1))
			}
			got := recvRouted(t, e, "10.0.0.1:8000,10.0.0.2:8000,10.0.0.3:8000", "llama-3-8b", DefaultChunkBytes)
			if !bytes.Equal(got, body) {
				t.Fatalf("body sent on differs from the input (%d vs %d bytes)", len(got), len(body))
			}

			served := withMeta(respHeaders(false, ":status", "200", "content-type", "application/json"), namespaceLB, keyServed, "10.0.0.2:8000")
			e.send(served)
			rh := e.recv()
			if rh.GetResponseHeaders() == nil {
				t.Fatalf("want a response-headers response, got %v", rh)
			}
			if v, _ := lbValue(rh, keyServed); v != "10.0.0.2:8000" {
				t.Errorf("served metadata = %q, want 10.0.0.2:8000", v)
			}
			resp := []byte(`{"id":"x","choices":[{"message":{"content":"hi \"usage\": 1"}}],"usage":{"prompt_tokens":31,"completion_tokens":7,"total_tokens":38}}`)
			for i, p := range split(resp, 3) {
				e.send(respBody(p, i == 2))
				sb := streamed(t, e.recv(), false)
				if !bytes.Equal(sb.GetBody(), p) || sb.GetEndOfStream() != (i == 2) {
					t.Errorf("response chunk %d echoed as %q eos=%v", i, sb.GetBody(), sb.GetEndOfStream())
				}
			}
			if err := e.end(); err != nil {
				t.Fatalf("stream end: %v", err)
			}

			reqs, dones := d.calls()
			if len(reqs) != 1 {
				t.Fatalf("Decide called %d times, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Model != "llama-3-8b" || r.Method != "POST" || r.Path != "/v1/chat/completions" || !bytes.Equal(r.Body, body) ||
				r.Headers["x-gateway-inference-objective"] != "chat" || r.Headers["x-request-id"] != "r-1" || r.Subset != nil || r.Sheddable {
				t.Errorf("Decide got model %q method %q path %q headers %v subset %v sheddable %v", r.Model, r.Method, r.Path, r.Headers, r.Subset, r.Sheddable)
			}
			if len(dones) != 1 {
				t.Fatalf("Done called %d times, want 1", len(dones))
			}
			o := dones[0]
			// Done names the endpoint picked; Served the one Envoy reported.
			if o.endpoint != "10.0.0.1:8000" || o.outcome.Served != "10.0.0.2:8000" || o.outcome.Status != 200 || o.outcome.PromptTokens != 31 || o.outcome.CompletionTokens != 7 ||
				o.outcome.Streamed || o.outcome.Err != nil || o.outcome.Total < o.outcome.FirstByte {
				t.Errorf("Done(%q, %+v)", o.endpoint, o.outcome)
			}
		})
	}
}

func TestHeaderOnlyGET(t *testing.T) {
	t.Parallel()
	d := &fakeDecider{eps: threeEndpoints[:1]}
	h := startServer(t, d, DefaultOptions())
	e := h.open(t)
	e.send(reqHeaders(true, ":method", "GET", ":path", "/v1/models", "x-gateway-model-name", "llama"))
	hr := e.recv()
	set := setHeaders(hr.GetRequestHeaders().GetResponse().GetHeaderMutation())
	if set[headerDestination] != "10.0.0.1:8000" || !hr.GetRequestHeaders().GetResponse().GetClearRouteCache() {
		t.Errorf("headers response %v", hr)
	}
	if _, ok := set["content-length"]; ok {
		t.Error("content-length set for a request without a body")
	}
	if _, ok := set[headerModel]; ok {
		t.Error("model header set again although the request carried it")
	}
	e.send(respHeaders(true, ":status", "204"))
	if e.recv().GetResponseHeaders() == nil {
		t.Fatal("want a response-headers response")
	}
	if err := e.end(); err != nil {
		t.Fatal(err)
	}
	reqs, dones := d.calls()
	if len(reqs) != 1 || reqs[0].Model != "llama" || reqs[0].Method != "GET" || reqs[0].Body != nil {
		t.Errorf("Decide calls %+v", reqs)
	}
	if len(dones) != 1 || dones[0].endpoint != "10.0.0.1:8000" || dones[0].outcome.Status != 204 || dones[0].outcome.Err != nil {
		t.Errorf("Done calls %+v", dones)
	}
}

func TestStreamedSSEUsage(t *testing.T) {
	t.Parallel()
	d := &fakeDecider{eps: threeEndpoints[:2]}
	h := startServer(t, d, DefaultOptions())
	e := h.open(t)
	e.send(postHeaders(), reqBody([]byte(`{"model":"m","stream":true,"prompt":"hi"}`), true))
	recvRouted(t, e, "10.0.0.1:8000,10.0.0.2:8000", "m", DefaultChunkBytes)

	e.send(respHeaders(false, ":status", "200", "content-type", "text/event-stream; charset=utf-8"))
	e.recv()
	var sse strings.Builder
	for i := range 50 {
		fmt.Fprintf(&sse, "data: {\"choices\":[{\"text\":\"tok%d\"}],\"usage\":null}\n\n", i)
	}
	sse.WriteString("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":50}}\r\n\r\n")
	sse.WriteString("data: [DONE]\n\n")
	parts := split([]byte(sse.String()), 17) // chunk edges fall inside lines
	for i, p := range parts {
		e.send(respBody(p, i == len(parts)-1))
		if sb := streamed(t, e.recv(), false); !bytes.Equal(sb.GetBody(), p) {
			t.Fatalf("chunk %d not echoed", i)
		}
	}
	if err := e.end(); err != nil {
		t.Fatal(err)
	}
	_, dones := d.calls()
	if len(dones) != 1 {
		t.Fatalf("Done called %d times", len(dones))
	}
	if o := dones[0].outcome; !o.Streamed || o.PromptTokens != 12 || o.CompletionTokens != 50 || o.Status != 200 || o.Err != nil {
		t.Errorf("outcome %+v", o)
	}
	if dones[0].endpoint != "10.0.0.1:8000" {
		t.Errorf("Done endpoint %q, want the primary (Envoy did not report the served one)", dones[0].endpoint)
	}
}

func TestFallbackList(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n    int
		eps  []string
		want string
	}{
		{1, threeEndpoints, "10.0.0.1:8000"},
		{2, threeEndpoints, "10.0.0.1:8000,10.0.0.2:8000"},
		{3, threeEndpoints, "10.0.0.1:8000,10.0.0.2:8000,10.0.0.3:8000"},
		{8, threeEndpoints, "10.0.0.1:8000,10.0.0.2:8000,10.0.0.3:8000,10.0.0.4:8000"},
		{3, []string{"10.0.0.1:8000", "", "10.0.0.1:8000", "10.0.0.5:8000"}, "10.0.0.1:8000,10.0.0.5:8000"},
	} {
		t.Run(fmt.Sprintf("%d of %d", tt.n, len(tt.eps)), func(t *testing.T) {
			t.Parallel()
			opts := DefaultOptions()
			opts.FallbackEndpoints = tt.n
			h := startServer(t, &fakeDecider{eps: tt.eps}, opts)
			e := h.open(t)
			e.send(postHeaders(), reqBody([]byte(`{"model":"m"}`), true))
			recvRouted(t, e, tt.want, "m", DefaultChunkBytes)
		})
	}
}

func TestRequestFields(t *testing.T) {
	t.Parallel()
	objectives := map[string]bool{"batch": true}
	for _, tt := range []struct {
		name          string
		kv            []string
		body          string
		wantModel     string
		wantSetModel  string
		wantSheddable bool
	}{
		{name: "model from the body", body: `{"model":"a"}`, wantModel: "a", wantSetModel: "a"},
		{name: "model header wins", kv: []string{"X-Gateway-Model-Name", "base"}, body: `{"model":"lora-1"}`, wantModel: "base"},
		{name: "model header, no model in body", kv: []string{"x-gateway-model-name", "base"}, body: `{"input":"x"}`, wantModel: "base"},
		{name: "sheddable header", kv: []string{"x-gateway-sheddable", "True"}, body: `{"model":"a"}`, wantModel: "a", wantSetModel: "a", wantSheddable: true},
		{name: "sheddable objective", kv: []string{"x-gateway-inference-objective", "batch"}, body: `{"model":"a"}`, wantModel: "a", wantSetModel: "a", wantSheddable: true},
		{name: "critical objective", kv: []string{"x-gateway-inference-objective", "chat"}, body: `{"model":"a"}`, wantModel: "a", wantSetModel: "a"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{eps: threeEndpoints[:1]}
			h := startServer(t, d, DefaultOptions(), WithSheddable(func(o string) bool { return objectives[o] }))
			e := h.open(t)
			e.send(postHeaders(tt.kv...), reqBody([]byte(tt.body), true))
			recvRouted(t, e, "10.0.0.1:8000", tt.wantSetModel, DefaultChunkBytes)
			reqs, _ := d.calls()
			if len(reqs) != 1 || reqs[0].Model != tt.wantModel || reqs[0].Sheddable != tt.wantSheddable {
				t.Errorf("Decide calls %+v", reqs)
			}
		})
	}
}

func TestRequestTrailersEndTheBody(t *testing.T) {
	t.Parallel()
	d := &fakeDecider{eps: threeEndpoints[:1]}
	opts := DefaultOptions()
	opts.ChunkBytes = 1024
	h := startServer(t, d, opts)
	e := h.open(t)
	body := chatBody(3000)
	e.send(postHeaders(), reqBody(body, false), reqTrailers())
	hr := e.recv()
	if setHeaders(hr.GetRequestHeaders().GetResponse().GetHeaderMutation())["content-length"] != strconv.Itoa(len(body)) {
		t.Errorf("headers response %v", hr)
	}
	var got []byte
	for range 3 {
		sb := streamed(t, e.recv(), true)
		if sb.GetEndOfStream() {
			t.Error("end_of_stream on a body followed by trailers")
		}
		got = append(got, sb.GetBody()...)
	}
	if !bytes.Equal(got, body) {
		t.Error("body differs")
	}
	if e.recv().GetRequestTrailers() == nil {
		t.Error("want a request-trailers response")
	}
	e.send(respHeaders(false, ":status", "200"), respBody([]byte("ok"), false),
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}})
	e.recv()
	e.recv()
	if e.recv().GetResponseTrailers() == nil {
		t.Error("want a response-trailers response")
	}
	if err := e.end(); err != nil {
		t.Fatal(err)
	}
	if _, dones := d.calls(); len(dones) != 1 || dones[0].outcome.Err != nil {
		t.Errorf("Done calls %+v", dones)
	}
}
