package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/headroom-dev/headroom/picker/extproc"
)

func TestExtProcRoutesThroughPicker(t *testing.T) {
	t.Parallel()
	a, b := startModel(t, nil), startModel(t, nil)
	d := newDecider(b.addr, a.addr)
	pickerAddr, _ := startPicker(t, d, "")
	g, url := startGateway(t, Options{Endpoints: []string{a.addr, b.addr}, Pickers: []string{pickerAddr}, ChunkBytes: 1024})
	c := client(t)

	for _, tc := range []struct {
		name   string
		prompt int
		stream bool
	}{
		{"streamed, chunked body", 5000, true},
		{"json, one chunk", 10, false},
		{"streamed, body over the inline limit", 200 << 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := chatBody(tc.prompt, tc.stream)
			before := len(func() [][]byte { bs, _, _ := b.received(); return bs }())
			resp, got := post(t, c, url, body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Served-By") != b.addr {
				t.Fatalf("status %d served by %q, want 200 from %s: %s", resp.StatusCode, resp.Header.Get("X-Served-By"), b.addr, got)
			}
			bodies, paths, headers := b.received()
			if len(bodies) != before+1 || !bytes.Equal(bodies[before], body) {
				t.Fatalf("the chosen server got %d requests; body intact: %v", len(bodies)-before, len(bodies) > before && bytes.Equal(bodies[len(bodies)-1], body))
			}
			if paths[before] != "/v1/chat/completions" || headers[before].Get(headerDestination) != b.addr+","+a.addr {
				t.Errorf("upstream path %q, destination header %q", paths[before], headers[before].Get(headerDestination))
			}
			if tc.stream && !strings.Contains(got, `"i":2`) || tc.stream && !strings.HasSuffix(got, "data: [DONE]\n\n") {
				t.Errorf("stream not relayed whole: %q", got)
			}
			dc := d.done(t)
			if dc.picked != b.addr || dc.outcome.Served != b.addr || dc.outcome.Status != 200 || dc.outcome.Err != nil {
				t.Errorf("Done(%q, %+v), want the served endpoint %s", dc.picked, dc.outcome, b.addr)
			}
			if tc.stream && (!dc.outcome.Streamed || dc.outcome.CompletionTokens != 3) {
				t.Errorf("outcome %+v: want a stream with 3 completion tokens", dc.outcome)
			}
		})
	}
	if reqs := d.calls(); len(reqs) != 3 || reqs[0].Model != "m" {
		t.Errorf("decider saw %d requests, model %q", len(reqs), reqs[0].Model)
	}
	st := g.Stats()
	if st.Requests != 3 || st.Failed != 0 || st.PerEndpoint[b.addr].Routed != 3 || st.PerEndpoint[b.addr].InFlight != 0 || st.PerEndpoint[a.addr].Routed != 0 {
		t.Errorf("stats %+v", st)
	}
	if st.Decisions != 3 || st.DecisionTime <= 0 {
		t.Errorf("%d decisions taking %v in all; want 3 taking some time", st.Decisions, st.DecisionTime)
	}
}

func TestExtProcStreamsIncrementally(t *testing.T) {
	t.Parallel()
	gate := make(chan struct{})
	m := startModel(t, func(m *modelServer) { m.gate = gate })
	pickerAddr, _ := startPicker(t, newDecider(m.addr), "")
	_, url := startGateway(t, Options{Endpoints: []string{m.addr}, Pickers: []string{pickerAddr}})

	resp, err := client(t).Post(url+"/v1/completions", "application/json", bytes.NewReader(chatBody(10, true)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	// The server holds every event after the first until the gate opens:
	// the first must arrive before that.
	if ev := readEvent(t, r); !strings.Contains(ev, `"i":0`) {
		t.Fatalf("first event %q", ev)
	}
	close(gate)
	for _, want := range []string{`"i":1`, `"i":2`, `"usage"`, "[DONE]"} {
		if ev := readEvent(t, r); !strings.Contains(ev, want) {
			t.Fatalf("event %q, want %s", ev, want)
		}
	}
}

func TestExtProcFallsBackWhenEndpointRefuses(t *testing.T) {
	t.Parallel()
	m := startModel(t, nil)
	dead := deadAddr(t)
	d := newDecider(dead, m.addr)
	pickerAddr, _ := startPicker(t, d, "")
	g, url := startGateway(t, Options{Endpoints: []string{dead, m.addr}, Pickers: []string{pickerAddr}})

	resp, got := post(t, client(t), url, chatBody(10, true))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Served-By") != m.addr {
		t.Fatalf("status %d from %q: %s", resp.StatusCode, resp.Header.Get("X-Served-By"), got)
	}
	if dc := d.done(t); dc.picked != dead || dc.outcome.Served != m.addr {
		t.Errorf("Done(%q, served %q), want picked %s served %s", dc.picked, dc.outcome.Served, dead, m.addr)
	}
	if st := g.Stats(); st.Retried != 1 || st.PerEndpoint[dead].InFlight != 0 || st.PerEndpoint[m.addr].Routed != 1 {
		t.Errorf("stats %+v", st)
	}

	// Every endpoint refusing: 503, and the picker hears the stream end.
	d.setEndpoints(dead)
	resp, _ = post(t, client(t), url, chatBody(10, true))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("all endpoints down: status %d, want 503", resp.StatusCode)
	}
	if dc := d.done(t); dc.outcome.Err == nil {
		t.Errorf("Done after no endpoint answered: %+v, want an error", dc.outcome)
	}
	if st := g.Stats(); st.Failed != 1 {
		t.Errorf("failed %d, want 1", st.Failed)
	}
}

func TestExtProcImmediateResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"shed", extproc.ErrShed, http.StatusTooManyRequests},
		{"no endpoint", extproc.ErrNoEndpoint, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := startModel(t, nil)
			d := newDecider(m.addr)
			d.err = tc.err
			pickerAddr, _ := startPicker(t, d, "")
			g, url := startGateway(t, Options{Endpoints: []string{m.addr}, Pickers: []string{pickerAddr}})
			resp, got := post(t, client(t), url, chatBody(10, true))
			var e errorBody
			if resp.StatusCode != tc.code || json.Unmarshal([]byte(got), &e) != nil || e.Error.Code != tc.code {
				t.Errorf("status %d body %q, want %d with the picker's JSON error", resp.StatusCode, got, tc.code)
			}
			if resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("content-type %q", resp.Header.Get("Content-Type"))
			}
			if m.count() != 0 {
				t.Errorf("the model server got %d requests, want none", m.count())
			}
			if st := g.Stats(); st.Rejected != 1 || st.Failed != 0 || st.PickerErrors != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestExtProcSurvivesAStoppedReplica(t *testing.T) {
	t.Parallel()
	m := startModel(t, nil)
	d1, d2 := newDecider(m.addr), newDecider(m.addr)
	addr1, stop1 := startPicker(t, d1, "")
	addr2, _ := startPicker(t, d2, "")
	g, url := startGateway(t, Options{Endpoints: []string{m.addr}, Pickers: []string{addr1, addr2}})
	c := client(t)
	if resp, got := post(t, c, url, chatBody(10, true)); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	stop1()
	for i := range 6 {
		if resp, got := post(t, c, url, chatBody(10, true)); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d with one replica down: status %d: %s", i, resp.StatusCode, got)
		}
	}
	if st := g.Stats(); st.PickerErrors != 3 || st.Failed != 0 || st.FailedOpen != 0 {
		t.Errorf("stats %+v: want 3 picker errors (every other request starts at the stopped replica)", st)
	}
	n1 := len(d1.calls())

	// The replica comes back on its address and is used again soon.
	startPicker(t, d1, addr1)
	eventually(t, "the restarted replica to decide", func() bool {
		post(t, c, url, chatBody(10, true))
		return len(d1.calls()) > n1
	})
}

func TestExtProcNoPickerAnswers(t *testing.T) {
	t.Parallel()
	for _, failOpen := range []bool{false, true} {
		name := map[bool]string{false: "fail close", true: "fail open"}[failOpen]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := startModel(t, nil)
			g, url := startGateway(t, Options{Endpoints: []string{m.addr}, Pickers: []string{deadAddr(t), deadAddr(t)}, FailOpen: failOpen})
			resp, got := post(t, client(t), url, chatBody(10, true))
			st := g.Stats()
			if st.PickerErrors != 2 {
				t.Errorf("picker errors %d, want 2", st.PickerErrors)
			}
			if !failOpen {
				if resp.StatusCode != http.StatusServiceUnavailable || st.Failed != 1 || m.count() != 0 {
					t.Errorf("status %d, stats %+v, model requests %d: want 503, nothing routed", resp.StatusCode, st, m.count())
				}
				return
			}
			if resp.StatusCode != http.StatusOK || !strings.Contains(got, "[DONE]") || st.FailedOpen != 1 || st.PerEndpoint[m.addr].Routed != 1 {
				t.Errorf("status %d, stats %+v: want routed round robin", resp.StatusCode, st)
			}
		})
	}
}

func TestExtProcWithoutBody(t *testing.T) {
	t.Parallel()
	m := startModel(t, nil)
	d := newDecider(m.addr)
	pickerAddr, _ := startPicker(t, d, "")
	_, url := startGateway(t, Options{Endpoints: []string{m.addr}, Pickers: []string{pickerAddr}})
	resp, err := client(t).Get(url + "/v1/models?x=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, paths, _ := m.received()
	if resp.StatusCode != http.StatusOK || len(paths) != 1 || paths[0] != "/v1/models?x=1" {
		t.Fatalf("status %d, upstream paths %v", resp.StatusCode, paths)
	}
	if reqs := d.calls(); len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/v1/models?x=1" || reqs[0].Headers["x-request-id"] == "" {
		t.Errorf("decider saw %+v", reqs)
	}
	if dc := d.done(t); dc.outcome.Status != 200 || dc.outcome.Served != m.addr {
		t.Errorf("outcome %+v", dc.outcome)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	g, url := startGateway(t, Options{Endpoints: []string{"127.0.0.1:1"}, Policy: RoundRobin()})
	resp, err := client(t).Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || g.Stats().Requests != 0 {
		t.Errorf("status %d, requests %d", resp.StatusCode, g.Stats().Requests)
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"ext_proc without pickers", Options{Endpoints: []string{"127.0.0.1:1"}}},
		{"fail open without endpoints", Options{Pickers: []string{"127.0.0.1:1"}, FailOpen: true}},
		{"policy without endpoints", Options{Policy: RoundRobin()}},
		{"bad endpoint", Options{Policy: RoundRobin(), Endpoints: []string{"nohost"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.o); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
