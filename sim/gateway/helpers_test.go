package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/headroom-dev/headroom/picker/extproc"
)

// decider is a picker Decider returning a fixed endpoint list (or err),
// recording every call.
type decider struct {
	mu       sync.Mutex
	eps      []string
	err      error
	requests []extproc.Request
	dones    chan doneCall
}

type doneCall struct {
	picked  string
	outcome extproc.Outcome
}

func newDecider(eps ...string) *decider { return &decider{eps: eps, dones: make(chan doneCall, 256)} }

func (d *decider) Decide(_ context.Context, r *extproc.Request) (extproc.Decision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := *r
	c.Body = slices.Clone(r.Body)
	d.requests = append(d.requests, c)
	return extproc.Decision{Endpoints: d.eps}, d.err
}

func (d *decider) setEndpoints(eps ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.eps = eps
}

func (d *decider) Done(picked string, o extproc.Outcome) {
	select {
	case d.dones <- doneCall{picked, o}:
	default: // a benchmark: nobody reads them
	}
}

func (d *decider) calls() []extproc.Request {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.requests)
}

// done waits for the next Done call.
func (d *decider) done(t *testing.T) doneCall {
	t.Helper()
	select {
	case c := <-d.dones:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the Decider's Done was not called")
		return doneCall{}
	}
}

// startPicker serves a real picker ext_proc server deciding with d on
// addr ("" for a free port); stop ends it.
func startPicker(t testing.TB, d extproc.Decider, addr string) (string, func()) {
	t.Helper()
	srv, err := extproc.New(d, extproc.DefaultOptions(), testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	return serveProcessor(t, srv, addr)
}

func serveProcessor(t testing.TB, impl extprocv3.ExternalProcessorServer, addr string) (string, func()) {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, impl)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), gs.Stop
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// modelServer is a fake OpenAI server: JSON for plain requests, an event
// stream for "stream": true ones.
type modelServer struct {
	*httptest.Server
	addr string
	// events is the number of content events streamed (-1: until the
	// client leaves, one every 5ms).
	events int
	// gate, when set, holds each event after the first until it can be
	// received from.
	gate chan struct{}
	// left gets a value when a client leaves mid-stream.
	left chan struct{}
	// metrics is served on GET /metrics.
	metrics string
	// breakAfter, when above 0, cuts the connection after that many
	// events.
	breakAfter int

	mu       sync.Mutex
	bodies   [][]byte
	paths    []string
	headers  []http.Header
	requests int
}

func startModel(t testing.TB, configure func(*modelServer)) *modelServer {
	t.Helper()
	m := &modelServer{events: 3, left: make(chan struct{}, 16)}
	if configure != nil {
		configure(m)
	}
	m.Server = httptest.NewServer(m)
	m.addr = m.Listener.Addr().String()
	t.Cleanup(m.Close)
	return m
}

func (m *modelServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		_, _ = io.WriteString(w, m.metrics)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	m.bodies, m.paths, m.headers = append(m.bodies, body), append(m.paths, r.URL.RequestURI()), append(m.headers, r.Header.Clone())
	m.requests++
	m.mu.Unlock()
	w.Header().Set("X-Served-By", m.addr)
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"served":%q,"usage":{"prompt_tokens":3,"completion_tokens":2}}`, m.addr)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	rc := http.NewResponseController(w)
	for i := 0; m.events < 0 || i < m.events; i++ {
		_, _ = fmt.Fprintf(w, "data: {\"i\":%d,\"served\":%q}\n\n", i, m.addr)
		_ = rc.Flush()
		if m.breakAfter > 0 && i+1 == m.breakAfter {
			panic(http.ErrAbortHandler)
		}
		var wait <-chan struct{}
		var tick <-chan time.Time
		switch {
		case m.gate != nil:
			wait = m.gate
		case m.events < 0:
			tick = time.After(5 * time.Millisecond)
		default:
			continue
		}
		select {
		case <-wait:
		case <-tick:
		case <-r.Context().Done():
			select {
			case m.left <- struct{}{}:
			default:
			}
			return
		}
	}
	_, _ = fmt.Fprintf(w, "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":%d}}\n\ndata: [DONE]\n\n", m.events)
}

func (m *modelServer) received() (bodies [][]byte, paths []string, headers []http.Header) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.bodies), slices.Clone(m.paths), slices.Clone(m.headers)
}

func (m *modelServer) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.requests
}

// startGateway serves a gateway; it returns the gateway and its base URL.
func startGateway(t testing.TB, o Options) (*Gateway, string) {
	t.Helper()
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(func() { srv.Close(); _ = g.Close() })
	return g, srv.URL
}

// client is an HTTP client of the test's own.
func client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// chatBody is a chat request whose prompt is n bytes long.
func chatBody(n int, stream bool) []byte {
	b, _ := json.Marshal(map[string]any{
		"model": "m", "stream": stream,
		"messages": []map[string]string{{"role": "user", "content": strings.Repeat("x", n)}},
	})
	return b
}

// post sends a chat request and returns the response with its body read.
func post(t testing.TB, c *http.Client, url string, body []byte) (*http.Response, string) {
	t.Helper()
	resp, err := c.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp, string(b)
}

// readEvent reads one SSE data line.
func readEvent(t testing.TB, r *bufio.Reader) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		if strings.HasPrefix(line, "data:") {
			return strings.TrimSpace(line)
		}
	}
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, what, cond)
}
