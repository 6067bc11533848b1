package modelserver

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
)

// Modes of a fakeServer.
const (
	modeServe       = iota // the fixture
	modeHang               // never answers until the test ends or gives up
	modeGarbage            // HTML
	modeHuge               // over MaxBodyBytes, saying so in Content-Length
	modeHugeChunked        // over MaxBodyBytes, chunked
	mode500                // an error status
)

// fakeServer is a model server on loopback serving a fixture, switchable
// into each way of failing.
type fakeServer struct {
	*httptest.Server
	body     []byte
	mode     atomic.Int32
	requests atomic.Int64
}

func newFakeServer(t *testing.T, body []byte) *fakeServer {
	t.Helper()
	f := &fakeServer{body: body}
	release := make(chan struct{})
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		switch f.mode.Load() {
		case modeHang:
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case modeGarbage:
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><body>oops</body></html>"))
		case modeHuge, modeHugeChunked:
			body := append(bytes.Repeat([]byte("# padding\n"), MaxBodyBytes/10), f.body...)
			if f.mode.Load() == modeHuge {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			_, _ = w.Write(body)
		case mode500:
			http.Error(w, "engine dead", http.StatusInternalServerError)
		default:
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write(f.body)
		}
	}))
	t.Cleanup(func() { close(release); f.Close() })
	return f
}

// newBenchServer serves body on loopback until the benchmark ends.
func newBenchServer(b *testing.B, body []byte) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv.URL + "/metrics"
}

func testScraper(t *testing.T, timeout time.Duration) *scraper {
	t.Helper()
	s := newScraper(timeout, testutil.Logger())
	t.Cleanup(s.client.CloseIdleConnections)
	return s
}

func TestScrapeEveryEngine(t *testing.T) {
	t.Parallel()
	s := testScraper(t, 2*time.Second)
	var specs []targetSpec
	for _, tc := range fixtureStats {
		srv := newFakeServer(t, fixture(t, tc.file))
		specs = append(specs, targetSpec{key: tc.file, url: srv.URL + "/metrics", engine: tc.engine})
	}
	s.setTargets(specs)
	s.round(context.Background())
	table := s.latest.Load()
	for _, tc := range fixtureStats {
		r := (*table)[tc.file]
		if r == nil {
			t.Errorf("%s: no reading", tc.file)
			continue
		}
		if r.Stale() || r.Err != "" || r.SampleTime.IsZero() || r.Engine != string(tc.engine) {
			t.Errorf("%s: reading %+v", tc.file, r)
		}
		if !reflect.DeepEqual(r.Stats, tc.want) {
			t.Errorf("%s: stats %+v, want %+v", tc.file, r.Stats, tc.want)
		}
	}
}

// TestFailingTargetOnlyMarksItself: one endpoint hangs, answers garbage,
// too much or an error; it goes stale with its last good reading kept,
// and the others stay fresh. The round returns at the timeout (a test
// that hung here would time out).
func TestFailingTargetOnlyMarksItself(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		mode    int32
		wantErr string
	}{
		{"hanging", modeHang, "deadline exceeded"},
		{"garbage", modeGarbage, ErrNoMetrics.Error()},
		{"oversized", modeHuge, ErrBodyTooLarge.Error()},
		{"oversized chunked", modeHugeChunked, ErrBodyTooLarge.Error()},
		{"status 500", mode500, "500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Generous: reading 4 MiB under the race detector on a
			// loaded machine is slow. Only the hanging case waits it out.
			timeout := 10 * time.Second
			if tc.mode == modeHang {
				timeout = 2 * time.Second
			}
			s := testScraper(t, timeout)
			good, bad := newFakeServer(t, fixture(t, "vllm.prom")), newFakeServer(t, fixture(t, "sglang.prom"))
			s.setTargets([]targetSpec{{key: "good", url: good.URL, engine: VLLM}, {key: "bad", url: bad.URL, engine: SGLang}})
			ctx := context.Background()
			s.round(ctx)
			before := (*s.latest.Load())["bad"]
			if before == nil || before.Stale() {
				t.Fatalf("first round: %+v", before)
			}

			bad.mode.Store(tc.mode)
			s.round(ctx)
			table := *s.latest.Load()
			after := table["bad"]
			if !after.Stale() || !strings.Contains(after.Err, tc.wantErr) {
				t.Errorf("bad target: stale since %v, err %q; want stale with %q", after.StaleSince, after.Err, tc.wantErr)
			}
			if after.SampleTime != before.SampleTime || !reflect.DeepEqual(after.Stats, before.Stats) {
				t.Errorf("last good reading lost: %+v, was %+v", after, before)
			}
			if g := table["good"]; g.Stale() || g.Stats.Running != 21 {
				t.Errorf("the good target suffered: %+v", g)
			}
		})
	}
}

func TestRecovery(t *testing.T) {
	t.Parallel()
	s := testScraper(t, time.Second)
	srv := newFakeServer(t, fixture(t, "trtllm.prom"))
	s.setTargets([]targetSpec{{key: "k", url: srv.URL, engine: TRTLLM}})
	ctx := context.Background()
	read := func() (stale bool, since, sampled time.Time) {
		r := (*s.latest.Load())["k"]
		return r.Stale(), r.StaleSince, r.SampleTime
	}
	s.round(ctx)
	_, _, first := read()

	srv.mode.Store(mode500)
	s.round(ctx)
	s.round(ctx)
	stale, since, sampled := read()
	if !stale || sampled != first {
		t.Fatalf("after failures: stale=%v sampled=%v (first %v)", stale, sampled, first)
	}
	s.round(ctx)
	if _, again, _ := read(); again != since {
		t.Errorf("StaleSince moved from %v to %v while still failing", since, again)
	}

	srv.mode.Store(modeServe)
	s.round(ctx)
	if stale, _, sampled := read(); stale || !sampled.After(first) {
		t.Errorf("after recovery: stale=%v sampled=%v", stale, sampled)
	}
}

// TestNoSecondScrapeWhileInFlight: a target whose scrape has not returned
// is skipped by the next rounds.
func TestNoSecondScrapeWhileInFlight(t *testing.T) {
	t.Parallel()
	s := testScraper(t, time.Second)
	srv := newFakeServer(t, fixture(t, "vllm.prom"))
	s.setTargets([]targetSpec{{key: "k", url: srv.URL, engine: VLLM}})
	tg := s.current()[0]
	tg.inFlight.Store(true) // as if a scrape were stuck
	s.round(context.Background())
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("%d requests to a target with a scrape in flight", n)
	}
	tg.inFlight.Store(false)
	s.round(context.Background())
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests once the scrape returned, want 1", n)
	}
}

func TestTargetsComeAndGo(t *testing.T) {
	t.Parallel()
	s := testScraper(t, time.Second)
	a, b := newFakeServer(t, fixture(t, "vllm.prom")), newFakeServer(t, fixture(t, "sglang.prom"))
	specA, specB := targetSpec{key: "a", url: a.URL, engine: VLLM}, targetSpec{key: "b", url: b.URL, engine: SGLang}
	ctx := context.Background()
	if !s.setTargets([]targetSpec{specA}) {
		t.Error("adding a target is a change")
	}
	s.round(ctx)
	readingA := (*s.latest.Load())["a"]

	if !s.setTargets([]targetSpec{specA, specB}) {
		t.Error("adding a target is a change")
	}
	if s.setTargets([]targetSpec{specA, specB}) {
		t.Error("the same set again is no change")
	}
	if s.current()[0].reading.Load() != readingA {
		t.Error("an unchanged target lost its reading")
	}
	s.round(ctx)
	if tb := *s.latest.Load(); tb["a"] == nil || tb["b"] == nil {
		t.Fatalf("after adding b: %v", tb)
	}

	s.setTargets([]targetSpec{specB})
	s.round(ctx)
	if tb := *s.latest.Load(); tb["a"] != nil || tb["b"] == nil {
		t.Errorf("after removing a: %v", tb)
	}
	// A changed URL is a new target: no reading carried over.
	specB.url += "/other"
	s.setTargets([]targetSpec{specB})
	if s.current()[0].reading.Load() != nil {
		t.Error("a target with a new URL kept the old URL's reading")
	}
}

// TestUpdatedSignal: a round that changed something signals once, without
// blocking on a reader that is not there; a round that changed nothing
// does not.
func TestUpdatedSignal(t *testing.T) {
	t.Parallel()
	s := testScraper(t, time.Second)
	srv := newFakeServer(t, fixture(t, "vllm.prom"))
	s.setTargets([]targetSpec{{key: "k", url: srv.URL, engine: VLLM}})
	ctx := context.Background()
	s.round(ctx)
	s.round(ctx) // nobody reads: must not block
	if n := len(s.updated); n != 1 {
		t.Fatalf("%d signals pending, want 1", n)
	}
	<-s.updated
	srv.mode.Store(mode500)
	s.round(ctx) // goes stale: a change
	if n := len(s.updated); n != 1 {
		t.Fatalf("going stale: %d signals, want 1", n)
	}
	<-s.updated
	s.round(ctx) // failing the same way: nothing new
	if n := len(s.updated); n != 0 {
		t.Errorf("an unchanged round signalled")
	}
	s.setTargets(nil)
	s.round(ctx)
	if n := len(s.updated); n != 1 || len(*s.latest.Load()) != 0 {
		t.Errorf("removing the last target: %d signals, table %v", n, *s.latest.Load())
	}
}

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	s := testScraper(t, time.Second)
	r := NewReader(s.client)
	if _, err := r.Read(context.Background(), "http://127.0.0.1:1/metrics", VLLM); err == nil {
		t.Error("connection refused: no error")
	}
	if _, err := r.Read(context.Background(), "::not a url", VLLM); err == nil || errors.Is(err, ErrNoMetrics) {
		t.Errorf("bad URL: %v", err)
	}
}

// A pod whose server answers with a redirect cannot point the node agent
// at another URL (the API server, a cloud metadata endpoint, another
// tenant's pod): the redirect is not followed, the target goes stale.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	elsewhere := newFakeServer(t, fixture(t, "vllm.prom"))
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			pod := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/metrics", code))
			t.Cleanup(pod.Close)
			s := testScraper(t, 2*time.Second)
			s.setTargets([]targetSpec{{key: "pod", url: pod.URL + "/metrics", engine: VLLM}})
			s.round(context.Background())
			r := (*s.latest.Load())["pod"]
			if r == nil || !r.Stale() || !strings.Contains(r.Err, "redirects are not followed") {
				t.Fatalf("reading %+v, want stale with the redirect named", r)
			}
		})
	}
	if n := elsewhere.requests.Load(); n != 0 {
		t.Fatalf("the redirect's target got %d requests", n)
	}
}

// A server serving an impossible value keeps a fresh reading without it,
// and the drop is counted in the reading, cumulatively.
func TestScrapeCountsDroppedValues(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, []byte("vllm:num_requests_waiting -1\nvllm:num_requests_running 2\nvllm:kv_cache_usage_perc 3\n"))
	s := testScraper(t, 2*time.Second)
	s.setTargets([]targetSpec{{key: "pod", url: srv.URL + "/metrics", engine: VLLM}})
	s.round(context.Background())
	s.round(context.Background())
	r := (*s.latest.Load())["pod"]
	if r == nil || r.Stale() || r.Stats.Running != 2 || r.Stats.Waiting != 0 || r.Stats.HasKVCacheUsage {
		t.Fatalf("reading %+v", r)
	}
	if want := map[string]uint64{"negative": 2, "out_of_range": 2}; !reflect.DeepEqual(r.Dropped, want) {
		t.Fatalf("dropped %v, want %v", r.Dropped, want)
	}
}

// TestClockStopsWithoutTargets: with no target the scraper does not wake on
// its clock (a node with no model server paid for ten rounds a second), and
// it scrapes as soon as targets arrive and on its clock after that; when
// the last target goes it publishes the empty table and stops again.
func TestClockStopsWithoutTargets(t *testing.T) {
	t.Parallel()
	s := testScraper(t, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); s.run(ctx, time.Millisecond) }()

	testutil.Eventually(t, 10*time.Second, "the first round", func() bool { return s.rounds.Load() >= 1 })
	time.Sleep(50 * time.Millisecond) // fifty ticks of the clock
	if n := s.rounds.Load(); n != 1 {
		t.Fatalf("%d rounds with no target, want 1 (the clock kept running)", n)
	}

	srv := newFakeServer(t, fixture(t, "vllm.prom"))
	s.setTargets([]targetSpec{{key: "k", url: srv.URL, engine: VLLM}})
	testutil.Eventually(t, 10*time.Second, "a scrape of the new target", func() bool { return srv.requests.Load() >= 1 })
	testutil.Eventually(t, 10*time.Second, "rounds on the clock", func() bool { return srv.requests.Load() >= 5 })

	s.setTargets(nil)
	testutil.Eventually(t, 10*time.Second, "the empty table", func() bool { return len(*s.latest.Load()) == 0 })
	time.Sleep(10 * time.Millisecond) // a round still under way ends
	before := s.rounds.Load()
	time.Sleep(50 * time.Millisecond)
	if n := s.rounds.Load() - before; n > 1 {
		t.Errorf("%d rounds after the last target went, want at most 1", n)
	}
}
