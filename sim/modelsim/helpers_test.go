package modelsim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
)

// fastProfile is a test profile: 5 ms a decode step (+1 ms a sequence),
// prefill nearly free, a large KV cache.
func fastProfile() Profile {
	return Profile{Name: "test", PrefillTokensPerSecond: 1e6, DecodeStepBase: 5 * time.Millisecond,
		DecodeStepPerSeq: time.Millisecond, KVCacheTokens: 100000, MaxRunning: 4, MaxBatchedTokens: 4096}
}

// testServer is a Server running behind httptest.
type testServer struct {
	*Server
	URL  string
	stop context.CancelFunc // ends Run
	ran  chan error         // Run's result
}

// start builds a server from the test defaults changed by edit, runs it
// (unless edit clears run) and serves it; cleanup stops both.
func start(t *testing.T, edit func(o *Options), run bool) *testServer {
	t.Helper()
	o := Options{Name: "sim-0", Model: "m", Profile: fastProfile(), FlushInterval: 20 * time.Millisecond}
	if edit != nil {
		edit(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, stop: cancel, ran: make(chan error, 1)}
	if run {
		go func() { ts.ran <- s.Run(ctx) }()
	} else {
		ts.ran <- nil
	}
	hs := httptest.NewServer(s.Handler())
	ts.URL = hs.URL
	t.Cleanup(func() {
		cancel()
		<-ts.ran
		hs.CloseClientConnections()
		hs.Close()
	})
	return ts
}

// promptOf is a prompt of exactly n tokens.
func promptOf(n int) string { return strings.Repeat("abcd", n) }

// call sends one request and reads the whole response.
func call(ctx context.Context, method, url string, body any) (*http.Response, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

// post sends a JSON body and fails the test on a transport error.
func post(t *testing.T, url string, body any) (*http.Response, []byte) {
	t.Helper()
	resp, data, err := call(context.Background(), http.MethodPost, url, body)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	return resp, data
}

// event is one server-sent event and when it arrived.
type event struct {
	data string
	at   time.Time
}

// streamResult is a streamed response read to its end.
type streamResult struct {
	resp   *http.Response
	start  time.Time
	events []event
	raw    string // the whole body
}

func (r streamResult) ttft() time.Duration { return r.events[0].at.Sub(r.start) }

// stream posts a streaming request and reads every event. It checks the
// framing: every event is one "data: " line followed by a blank line.
func stream(ctx context.Context, url string, body any) (streamResult, error) {
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return streamResult{}, err
	}
	res := streamResult{start: time.Now()}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	res.resp = resp
	var all strings.Builder
	br := bufio.NewReader(io.TeeReader(resp.Body, &all))
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && line == "" {
			break
		}
		if err != nil {
			return res, err
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return res, errors.New("line without data: prefix: " + line)
		}
		if blank, err := br.ReadString('\n'); err != nil || blank != "\n" {
			return res, errors.New("event not followed by a blank line")
		}
		res.events = append(res.events, event{data: strings.TrimSuffix(data, "\n"), at: time.Now()})
	}
	res.raw = all.String()
	return res, nil
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

// fakeGPU records the loads it is given.
type fakeGPU struct {
	mu    sync.Mutex
	loads []float64
}

func (g *fakeGPU) SetLoad(busy float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.loads = append(g.loads, busy)
}

func (g *fakeGPU) snapshot() []float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]float64(nil), g.loads...)
}
