package direct

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	itestutil "github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/picker/ingest"
	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// modelServer serves a vLLM metrics page whose queue is settable, and
// counts the reads and the reads in flight.
type modelServer struct {
	*httptest.Server
	waiting         atomic.Int64
	reads, inFlight atomic.Int64
	maxInFlight     atomic.Int64
	delay           time.Duration
	handler         http.HandlerFunc // replaces the page when set
}

func newModelServer(t *testing.T, waiting int64) *modelServer {
	t.Helper()
	m := &modelServer{}
	m.waiting.Store(waiting)
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.reads.Add(1)
		n := m.inFlight.Add(1)
		defer m.inFlight.Add(-1)
		for {
			old := m.maxInFlight.Load()
			if n <= old || m.maxInFlight.CompareAndSwap(old, n) {
				break
			}
		}
		if m.delay > 0 {
			select {
			case <-time.After(m.delay):
			case <-r.Context().Done():
				return
			}
		}
		if m.handler != nil {
			m.handler(w, r)
			return
		}
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"m\"} %d\n"+
			"# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name=\"m\"} 4\n"+
			"# TYPE vllm:kv_cache_usage_perc gauge\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\n", m.waiting.Load())
	}))
	t.Cleanup(m.Close)
	return m
}

// endpoint is the view's entry for the server, with or without a fresh
// report.
func (m *modelServer) endpoint(t *testing.T, stale bool) *store.Endpoint {
	t.Helper()
	host, port, err := net.SplitHostPort(m.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	e := &store.Endpoint{Address: m.Listener.Addr().String(), IP: host, Port: p, Stale: stale}
	if !stale {
		e.Pod = &telemetryv1.Pod{Ip: host, ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 99}}
	}
	return e
}

func testOptions() Options {
	o := DefaultOptions()
	o.Interval, o.Timeout = 20*time.Millisecond, 2*time.Second
	return o
}

func views(eps ...*store.Endpoint) func() *store.View {
	v := &store.View{Endpoints: eps}
	return func() *store.View { return v }
}

func TestReadsOnlyEndpointsWithoutFreshReport(t *testing.T) {
	t.Parallel()
	fresh, stale, none := newModelServer(t, 1), newModelServer(t, 7), newModelServer(t, 3)
	s := New(testOptions(), views(fresh.endpoint(t, false), stale.endpoint(t, true), none.endpoint(t, true)), nil, itestutil.Logger())
	s.round(context.Background())
	if n := fresh.reads.Load(); n != 0 {
		t.Errorf("the server with a fresh report was read %d times; the agent reads it", n)
	}
	for _, c := range []struct {
		srv  *modelServer
		want float64
	}{{stale, 7}, {none, 3}} {
		ms := s.Reading(c.srv.Listener.Addr().String())
		if ms == nil {
			t.Fatalf("no reading of %s", c.srv.URL)
		}
		if ms.GetWaitingRequests() != c.want || ms.GetRunningRequests() != 4 || ms.GetKvCacheUsage() != 0.25 || ms.GetEngine() != "vllm" || ms.GetStale() {
			t.Errorf("reading of %s: %v", c.srv.URL, ms)
		}
		if age := time.Since(time.Unix(0, int64(ms.GetSampleTimeUnixNano()))); age < 0 || age > time.Minute {
			t.Errorf("sample time %v ago", age)
		}
	}
	if s.Reading(fresh.Listener.Addr().String()) != nil {
		t.Error("a reading offered for the endpoint its agent reports")
	}
	if got := testutil.ToFloat64(s.metrics.reads.WithLabelValues("ok")); got != 2 {
		t.Errorf("reads ok %v, want 2", got)
	}
}

// The picker's own reading takes the place of a stale report's in the
// view (the real store.Refresher), and lets go when the agent reports
// again.
func TestRefresherUsesReadingsUntilAgentIsBack(t *testing.T) {
	t.Parallel()
	srv := newModelServer(t, 5)
	e := srv.endpoint(t, true)
	nodes := ingest.NewStore(3, nil)
	target := store.NewTarget("llm", "vllm-0", e.IP, e.Port)
	target.Node = "n1"
	r := store.NewRefresher(func() []store.Target { return []store.Target{target} }, nodes, 5*time.Millisecond)
	s := New(testOptions(), r.Current, nil, itestutil.Logger())
	r.SetDirect(s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx, nil)
	go s.Run(ctx)
	itestutil.Eventually(t, 10*time.Second, "the view to use the picker's own reading of a pod without a report", func() bool {
		got := r.Current().Endpoints[0]
		return !got.Stale && got.Direct != nil && got.ModelServer().GetWaitingRequests() == 5 && got.GPUUnknown()
	})

	// The agent is back: its report is used and the server no longer read.
	nodes.Put(&telemetryv1.NodeReport{Node: "n1", AgentInstance: "a", Sequence: 1, IntervalNano: int64(time.Minute),
		SampleTimeUnixNano: uint64(time.Now().UnixNano()),
		Pods:               []*telemetryv1.Pod{{Name: "vllm-0", Ip: e.IP, ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 40}}}})
	itestutil.Eventually(t, 10*time.Second, "the view to take the agent's report again", func() bool {
		got := r.Current().Endpoints[0]
		return !got.Stale && got.Direct == nil && got.ModelServer().GetWaitingRequests() == 40
	})
	time.Sleep(100 * time.Millisecond) // rounds that still saw the old view end
	before := srv.reads.Load()
	time.Sleep(200 * time.Millisecond) // ten rounds
	if n := srv.reads.Load() - before; n != 0 {
		t.Errorf("read a server %d times while its agent reports it", n)
	}
}

// Hostile or broken servers give no reading, back off, and cost no more
// than their bound.
func TestBadServersGiveNoReading(t *testing.T) {
	t.Parallel()
	var hit atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit.Add(1) }))
	t.Cleanup(elsewhere.Close)
	cases := map[string]http.HandlerFunc{
		"redirect": func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, elsewhere.URL+"/metrics", http.StatusFound)
		},
		"status":  func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) },
		"garbage": func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "vllm:num_requests_waiting{ 3\n\x00\x01") },
		"empty":   func(w http.ResponseWriter, _ *http.Request) {},
		"huge": func(w http.ResponseWriter, _ *http.Request) {
			line := strings.Repeat("# padding padding padding padding\n", 1<<10)
			for range 200 { // 7 MB, over the 4 MiB bound
				if _, err := fmt.Fprint(w, line); err != nil {
					return
				}
			}
		},
		"negative": func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "vllm:num_requests_waiting -3\nvllm:num_requests_running -1\nvllm:kv_cache_usage_perc 7\n")
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := newModelServer(t, 0)
			srv.handler = h
			s := New(testOptions(), views(srv.endpoint(t, true)), nil, itestutil.Logger())
			s.round(context.Background())
			ms := s.Reading(srv.Listener.Addr().String())
			if name == "negative" {
				// Impossible values are left out, as the agent leaves them out.
				if ms != nil && (ms.GetWaitingRequests() < 0 || ms.GetRunningRequests() < 0 || ms.KvCacheUsage != nil) {
					t.Fatalf("impossible values offered: %v", ms)
				}
				return
			}
			if ms != nil {
				t.Fatalf("a reading from a %s server: %v", name, ms)
			}
			// Backing off: the next round does not read it again.
			s.round(context.Background())
			if n := srv.reads.Load(); n != 1 {
				t.Errorf("read %d times in two rounds after a failure, want 1", n)
			}
		})
	}
	t.Cleanup(func() {
		if hit.Load() != 0 {
			t.Error("a redirect was followed")
		}
	})
}

// A server slower than the timeout gives no reading, and its read ends at
// the timeout.
func TestSlowServerTimesOut(t *testing.T) {
	t.Parallel()
	srv := newModelServer(t, 2)
	srv.delay = 5 * time.Second
	o := testOptions()
	o.Timeout = 50 * time.Millisecond
	s := New(o, views(srv.endpoint(t, true)), nil, itestutil.Logger())
	start := time.Now()
	s.round(context.Background())
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a round took %v with a 50ms timeout", d)
	}
	if s.Reading(srv.Listener.Addr().String()) != nil {
		t.Error("a reading from a server that never answered")
	}
}

// More endpoints than the budget take turns; reads in flight stay within
// the concurrency bound.
func TestBudget(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxEndpoints, o.Concurrency = 2, 1
	var eps []*store.Endpoint
	var srvs []*modelServer
	for i := range 5 {
		srv := newModelServer(t, int64(i))
		srv.delay = 5 * time.Millisecond
		srvs = append(srvs, srv)
		eps = append(eps, srv.endpoint(t, true))
	}
	s := New(o, views(eps...), nil, itestutil.Logger())
	var total int64
	for round := range 3 {
		s.round(context.Background())
		var n int64
		for _, srv := range srvs {
			n += srv.reads.Load()
		}
		if n-total != 2 {
			t.Fatalf("round %d read %d servers, want 2", round, n-total)
		}
		total = n
	}
	for i, srv := range srvs {
		if srv.reads.Load() == 0 {
			t.Errorf("server %d never had its turn in 3 rounds of 2", i)
		}
		if m := srv.maxInFlight.Load(); m > 1 {
			t.Errorf("server %d: %d reads at once", i, m)
		}
	}
	if got := testutil.ToFloat64(s.metrics.deferred); got != 9 {
		t.Errorf("deferred %v, want 3 a round", got)
	}
}

// A reading ages out when the server stops answering.
func TestReadingAgesOut(t *testing.T) {
	t.Parallel()
	srv := newModelServer(t, 2)
	clock := itestutil.NewClock(time.Now())
	o := testOptions()
	s := New(o, views(srv.endpoint(t, true)), nil, itestutil.Logger())
	s.now = clock.Now
	s.round(context.Background())
	addr := srv.Listener.Addr().String()
	if s.Reading(addr) == nil {
		t.Fatal("no first reading")
	}
	clock.Add(o.maxAge() + time.Millisecond)
	if s.Reading(addr) != nil {
		t.Error("a reading older than two rounds and a read is still offered")
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	good := DefaultOptions()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := Options{Enabled: true, Port: 70000, Path: "metrics?x", Scheme: "ftp", Engine: "tgi", Interval: time.Millisecond, Timeout: time.Hour, MaxEndpoints: 0, Concurrency: 0}
	err := bad.Validate()
	for _, want := range []string{"metrics-port", "metrics-path", "metrics-scheme", "engine", "interval", "timeout", "max-endpoints", "concurrency"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no error about %s in %v", want, err)
		}
	}
	off := bad
	off.Enabled = false
	if err := off.Validate(); err != nil {
		t.Errorf("disabled: %v", err)
	}
}

// A server backing off after a failure takes no one's turn: with a budget
// of two, two failing servers do not keep two answering ones from being
// read every round.
func TestBackingOffTakesNoTurn(t *testing.T) {
	t.Parallel()
	o := testOptions()
	o.MaxEndpoints = 2
	o.Interval = time.Minute // rounds are run by hand; a failure backs off for minutes
	var eps []*store.Endpoint
	var good []*modelServer
	for i := range 4 {
		srv := newModelServer(t, int64(i))
		if i < 2 {
			srv.handler = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
		} else {
			good = append(good, srv)
		}
		eps = append(eps, srv.endpoint(t, true))
	}
	s := New(o, views(eps...), nil, itestutil.Logger())
	for range 3 { // the failing pair, then the answering pair, then the answering pair again
		s.round(context.Background())
	}
	for i, srv := range good {
		if n := srv.reads.Load(); n != 2 {
			t.Errorf("answering server %d read %d times in 3 rounds, want 2 (the failing ones back off)", i, n)
		}
	}
}
