package scoring

import (
	"math"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"google.golang.org/protobuf/proto"
)

// server is a simulated endpoint's cumulative histogram totals, advanced
// request by request as a model server would.
type server struct {
	lat              telemetryv1.LatencyTotals
	waiting, running float64
	// at is the last reading's sample time, after t0; each reading is
	// 10 ms later than the one before.
	at time.Duration
}

// serve adds one request of prompt tokens that held its slot svc seconds
// and took prefill seconds to its first token.
func (s *server) serve(prompt, prefill, svc float64) {
	l := &s.lat
	l.PrefillSecondsSum += prefill
	l.PrefillCount++
	l.PromptTokensSum += prompt
	l.PromptTokensCount++
	l.InferenceSecondsSum += svc
	l.InferenceCount++
	l.TtftSecondsSum += prefill
	l.TtftCount++
}

// reading is the endpoint as a report shows it now.
func (s *server) reading(i int) *store.Endpoint {
	e := ep(i)
	e.Pod.ModelServer.Latency = proto.CloneOf(&s.lat) // a report holds a copy
	e.Pod.ModelServer.WaitingRequests, e.Pod.ModelServer.RunningRequests = s.waiting, s.running
	s.at += 10 * time.Millisecond
	e.Pod.ModelServer.SampleTimeUnixNano = uint64(t0.Add(s.at).UnixNano())
	return e
}

func near2(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(math.Abs(b), 1e-12) }

func TestRatesLearnFromHistograms(t *testing.T) {
	t.Parallel()
	r := NewRates(0.5)
	var s server
	s.running = 3
	r.Learn(view([]*store.Endpoint{s.reading(0)})) // the baseline
	// Prefill is 25 ms + 0.1 ms a token; each request holds its slot 4 s.
	for i := range 40 {
		p := float64(50 + 37*(i%9))
		s.serve(p, 0.025+p*0.0001, 4)
		s.running = float64(3 + i%5)
		s.waiting = 0
		if i == 30 {
			s.waiting = 2
		}
		r.Learn(view([]*store.Endpoint{s.reading(0)}))
	}
	e := r.m[ep(0).Address]
	if got := load(&e.service); !near2(got, 4, 0.01) {
		t.Errorf("service %v s, want 4", got)
	}
	if b, c := load(&e.prefillBase), load(&e.prefillPerToken); !near2(b, 0.025, 0.05) || !near2(c, 0.0001, 0.05) {
		t.Errorf("prefill %v s + %v s a token, want 0.025 + 0.0001", b, c)
	}
	if got := load(&e.slots); got != 7 || !e.full.Load() {
		t.Errorf("slots %v (full %v), want 7, seen full", got, e.full.Load())
	}

	// A restart (totals fall) forgets, and the next readings teach again.
	s2 := server{running: 1, at: s.at} // a restart's readings are newer still
	s2.serve(100, 0.5, 9)
	r.Learn(view([]*store.Endpoint{s2.reading(0)}))
	if got := load(&e.service); got != 0 || e.full.Load() {
		t.Errorf("after a restart: service %v, full %v; want forgotten", got, e.full.Load())
	}
	s2.serve(100, 0.5, 9)
	r.Learn(view([]*store.Endpoint{s2.reading(0)}))
	if got := load(&e.service); got != 9 {
		t.Errorf("relearnt service %v s, want 9", got)
	}
}

// A stale endpoint teaches nothing: its readings are frozen.
func TestRatesSkipStale(t *testing.T) {
	t.Parallel()
	r := NewRates(1)
	var s server
	r.Learn(view([]*store.Endpoint{s.reading(0)}))
	s.serve(100, 0.1, 3)
	e := s.reading(0)
	e.Stale = true
	r.Learn(view([]*store.Endpoint{e}))
	if got := load(&r.m[e.Address].service); got != 0 {
		t.Fatalf("learnt service %v s from a stale report", got)
	}
}

// A server without stage histograms learns its service time from the
// responses this replica routes, and every response teaches tokens per
// byte.
func TestRatesFromResponses(t *testing.T) {
	t.Parallel()
	r := NewRates(1)
	r.Observe("a:1", Response{FirstByte: 200 * time.Millisecond, Total: 3200 * time.Millisecond, PromptTokens: 100, RequestBytes: 500})
	if got := load(&r.m["a:1"].service); !near2(got, 3, 1e-9) {
		t.Fatalf("service %v s, want 3 (first byte to last)", got)
	}
	for range 200 {
		r.Observe("a:1", Response{PromptTokens: 100, RequestBytes: 500})
	}
	if got := r.TokensPerByte(); !near2(got, 0.2, 0.01) {
		t.Fatalf("tokens per byte %v, want 0.2", got)
	}
	// Once the server's histograms give the service time, responses do
	// not override it.
	var s server
	r.Learn(view([]*store.Endpoint{s.reading(0)}))
	s.serve(10, 0.1, 7)
	r.Learn(view([]*store.Endpoint{s.reading(0)}))
	addr := ep(0).Address
	r.Observe(addr, Response{FirstByte: time.Second, Total: 2 * time.Second})
	if got := load(&r.m[addr].service); got != 7 {
		t.Fatalf("service %v s, want the histograms' 7", got)
	}
}

func TestPrefillFitWithoutSpread(t *testing.T) {
	t.Parallel()
	var f prefillFit
	for range 20 {
		f.add(100, 0.05, 0.1)
	}
	if b, c, ok := f.line(); !ok || b != 0 || !near2(c, 0.0005, 1e-9) {
		t.Fatalf("line %v + %v·p (%v), want proportional: 0 + 0.0005·p", b, c, ok)
	}
}

// A reading older than the last one learnt from (the agent's report
// arriving after the picker's own read of the server, picker/direct)
// teaches nothing and forgets nothing: its smaller totals are not a
// restart.
func TestRatesIgnoreOlderReading(t *testing.T) {
	t.Parallel()
	r := NewRates(1)
	var s server
	s.running = 2
	r.Learn(view([]*store.Endpoint{s.reading(0)}))
	older := s.reading(0) // sampled now, delivered late
	s.serve(100, 0.1, 3)
	r.Learn(view([]*store.Endpoint{s.reading(0)}))
	e := r.m[older.Address]
	if got := load(&e.service); got != 3 {
		t.Fatalf("service %v s, want 3", got)
	}
	r.Learn(view([]*store.Endpoint{older}))
	if got := load(&e.service); got != 3 {
		t.Errorf("after an older reading: service %v s, want 3 kept (not a restart)", got)
	}
	s.serve(100, 0.1, 5)
	r.Learn(view([]*store.Endpoint{s.reading(0)}))
	if got := load(&e.service); got != 5 {
		t.Errorf("the next newer reading: service %v s, want 5 (alpha 1)", got)
	}
}
