package scoring

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	"github.com/headroom-dev/headroom/picker/subset"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func newDefault(t testing.TB, seed uint64, now func() time.Time) *Picker {
	t.Helper()
	p, err := New(DefaultConfig(), seeded(seed), now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// burst picks k times between two reports (nothing finishes) and counts
// the picks per address.
func burst(t *testing.T, p *Picker, v *store.View, k int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range k {
		e, err := p.Pick(&Request{Model: "m"}, v, 1)
		if err != nil {
			t.Fatal(err)
		}
		got[e[0].Address]++
	}
	return got
}

// TestHerding: 100 requests between two reports over 4 endpoints, one of
// which looks emptiest. With in-flight accounting they spread; without it
// every one lands on the emptiest-looking pod.
func TestHerding(t *testing.T) {
	t.Parallel()
	const n, k = 4, 100
	e := eps(n, func(i int, e *store.Endpoint) {
		if i > 0 {
			e.Pod.ModelServer.WaitingRequests = 1
		}
	})
	v := view(e)
	clk := &fakeClock{t: t0.Add(100 * time.Millisecond)} // after the reports' sample

	with := burst(t, newDefault(t, 1, clk.now), v, k)
	t.Logf("with accounting: %v", with)
	for a, c := range with {
		if c > 2*k/n {
			t.Errorf("with accounting: %s got %d of %d picks, over twice its fair share %d (%v)", a, c, k, k/n, with)
		}
	}
	if len(with) != n {
		t.Errorf("with accounting: only %d of %d endpoints used: %v", len(with), n, with)
	}

	tr := NewTracker(clk.now)
	without := NewPicker(Parts{
		Filters: []Filter{NewHealthFilter(nil, 0)},
		Scorers: []Weighted{{QueueScorer{}, 2}, {KVCacheScorer{}, 2}, {VRAMScorer{}, 0.5}},
		Tracker: tr, Rand: seeded(1),
	})
	herd := burst(t, without, v, k)
	t.Logf("without: %v", herd)
	if herd[e[0].Address] != k {
		t.Errorf("without accounting: the emptiest-looking pod got %d of %d, want all (%v)", herd[e[0].Address], k, herd)
	}
}

func TestShed(t *testing.T) {
	t.Parallel()
	sat := func(i int, e *store.Endpoint) {
		if i%2 == 0 {
			e.Pod.ModelServer.WaitingRequests = 6
		} else {
			e.Pod.ModelServer.KvCacheUsage = ptr(0.9)
		}
	}
	tests := []struct {
		name      string
		mut       func(int, *store.Endpoint)
		sheddable bool
		picked    int // requests picked after the reports, to endpoint 1
		want      error
	}{
		{"saturated, sheddable", sat, true, 0, ErrShed},
		{"saturated, not sheddable", sat, false, 0, nil},
		{"one endpoint has room", func(i int, e *store.Endpoint) {
			if i != 3 {
				sat(i, e)
			}
		}, true, 0, nil},
		{"at the thresholds is not over", func(_ int, e *store.Endpoint) {
			e.Pod.ModelServer.WaitingRequests, e.Pod.ModelServer.KvCacheUsage = 5, ptr(0.8)
		}, true, 0, nil},
		{"picks since the report saturate", func(i int, e *store.Endpoint) {
			e.Pod.ModelServer.WaitingRequests = 6
			if i == 1 {
				e.Pod.ModelServer.WaitingRequests = 0
			}
		}, true, 6, ErrShed},
		{"no readings is not saturated", func(_ int, e *store.Endpoint) { e.Pod.ModelServer.KvCacheUsage = nil }, true, 0, nil},
		{"a stale endpoint's frozen room does not count", func(i int, e *store.Endpoint) {
			sat(i, e)
			if i == 3 {
				e.Stale, e.Pod.ModelServer.WaitingRequests, e.Pod.ModelServer.KvCacheUsage = true, 0, ptr(0.1)
			}
		}, true, 0, ErrShed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := eps(4, tc.mut)
			p := newDefault(t, 1, func() time.Time { return t0.Add(time.Second) })
			for range tc.picked {
				p.Tracker().Picked(e[1].Address)
			}
			_, err := p.Pick(&Request{Sheddable: tc.sheddable}, view(e), 1)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSubsetByIP(t *testing.T) {
	t.Parallel()
	e := eps(12)
	e[11].IP, e[11].Address = "fd00::1", "[fd00::1]:8000"
	var many []string
	for i := 20; i < 40; i++ {
		many = append(many, fmt.Sprintf("10.0.9.%d:8000", i))
	}
	many = append(many, e[4].IP+":1")
	tests := []struct {
		name   string
		subset *subset.Hosts
		want   []string // allowed addresses
		err    error
	}{
		{"nil allows all", nil, nil, nil},
		{"ip:port matches by ip, any port", subset.New([]string{e[2].IP + ":9999"}), []string{e[2].Address}, nil},
		{"bare ip", subset.New([]string{e[3].IP, e[5].IP}), []string{e[3].Address, e[5].Address}, nil},
		{"ipv6 with port", subset.New([]string{"[fd00::1]:1234"}), []string{e[11].Address}, nil},
		{"large subset", subset.New(many), []string{e[4].Address}, nil},
		{"empty subset", subset.New(nil), nil, ErrNoEndpoint},
		{"none in the pool", subset.New([]string{"192.168.1.1:8000"}), nil, ErrNoEndpoint},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newDefault(t, 7, nil)
			d, err := p.Decide(&Request{Subset: tc.subset}, view(e), len(e))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			var got []string
			for _, x := range d.Endpoints {
				got = append(got, x.Address)
			}
			if tc.want == nil {
				if len(got) != len(e) {
					t.Fatalf("got %d endpoints, want all %d", len(got), len(e))
				}
				return
			}
			slices.Sort(got)
			slices.Sort(tc.want)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAllUnhealthyFallback(t *testing.T) {
	t.Parallel()
	e := eps(4, func(i int, e *store.Endpoint) {
		e.Pod.ModelServer.Stale = i != 2 // the scrape failed
		if i == 2 {
			e.GPUs[0].Health.Lost = true
		}
		e.Pod.ModelServer.WaitingRequests = 50 // saturated, but not trusted
	})
	p := newDefault(t, 3, nil)
	for _, i := range []int{0, 0, 1, 2, 2, 2} {
		p.Tracker().Picked(e[i].Address)
	}
	// e3 has nothing in flight: least-in-flight decides.
	d, err := p.Decide(&Request{Sheddable: true}, view(e), 4)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Degraded || d.Endpoints[0] != e[3] || d.Candidates != 4 {
		t.Fatalf("degraded %v, first %s, candidates %d; want degraded, %s, 4", d.Degraded, d.Endpoints[0].Address, d.Candidates, e[3].Address)
	}
	if want := []*store.Endpoint{e[3], e[1], e[0], e[2]}; !slices.Equal(d.Endpoints, want) {
		t.Fatalf("ranking by in-flight: got %v", d.Endpoints)
	}
	// In-flight, and the expected wait from learnt rates and this
	// replica's picks; nothing else that reads the reports.
	for name := range d.Contributions {
		if name != ScorerInFlight && name != ScorerWait {
			t.Fatalf("contributions %v, want in-flight and expected-wait alone", d.Contributions)
		}
	}
	if d.Contributions[ScorerInFlight] != 1 {
		t.Fatalf("contributions %v, want in-flight's full weight for the least loaded", d.Contributions)
	}
}

func TestDeterministicTies(t *testing.T) {
	t.Parallel()
	v := view(eps(8))
	run := func(seed uint64) []string {
		// Nothing is recorded between picks, so every pick is a full tie.
		p := NewPicker(Parts{Scorers: []Weighted{{KVCacheScorer{}, 1}}, Rand: seeded(seed)})
		var out []string
		for range 20 {
			e, err := p.Pick(&Request{}, v, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range e {
				out = append(out, x.Address)
			}
		}
		return out
	}
	a, b := run(42), run(42)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave different picks")
	}
	if slices.Equal(a, run(43)) {
		t.Fatal("different seeds gave the same 60 picks")
	}
	firsts := map[string]bool{}
	for i := 0; i < len(a); i += 3 {
		firsts[a[i]] = true
		if a[i] == a[i+1] || a[i] == a[i+2] || a[i+1] == a[i+2] {
			t.Fatalf("pick %d repeats an endpoint: %v", i/3, a[i:i+3])
		}
	}
	if len(firsts) < 4 {
		t.Fatalf("ties went to only %d of 8 endpoints over 20 picks", len(firsts))
	}
}

// TestDefaultMix checks the default weights order endpoints that differ
// in one signal each, and that the contributions add up.
func TestDefaultMix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    *Request
		mut  func(i int, e *store.Endpoint) // endpoint 0 should win
	}{
		{"kv-cache", &Request{}, func(i int, e *store.Endpoint) {
			e.Pod.ModelServer.KvCacheUsage = ptr(0.1 + 0.4*float64(min(i, 1)))
		}},
		{"queue", &Request{}, func(i int, e *store.Endpoint) { e.Pod.ModelServer.WaitingRequests = float64(i) }},
		{"throttled lose", &Request{}, func(i int, e *store.Endpoint) {
			if i > 0 {
				e.GPUs[0].ThrottleReasons = 0x20
			}
		}},
		{"lost gpus are out", &Request{}, func(i int, e *store.Endpoint) {
			e.GPUs[0].Health.Lost = i > 0
			e.Pod.ModelServer.KvCacheUsage = ptr(0.9 - 0.9*float64(min(i, 1)))
		}},
		{"lora adapter loaded", &Request{LoRA: "sql"}, func(i int, e *store.Endpoint) {
			e.Pod.ModelServer.Lora = &telemetryv1.LoRA{MaxAdapters: 1, Running: []string{"chat"}}
			if i == 0 {
				e.Pod.ModelServer.Lora.Running = []string{"sql"}
			}
		}},
		{"queue outweighs a small kv gap", &Request{}, func(i int, e *store.Endpoint) {
			e.Pod.ModelServer.WaitingRequests = float64(4 * min(i, 1))
			e.Pod.ModelServer.KvCacheUsage = ptr(0.3 - 0.1*float64(min(i, 1)))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := eps(4, tc.mut)
			d, err := newDefault(t, 5, nil).Decide(tc.r, view(e), 2)
			if err != nil {
				t.Fatal(err)
			}
			if d.Endpoints[0] != e[0] {
				t.Fatalf("picked %s, want %s (scores %v, contributions %v)", d.Endpoints[0].Address, e[0].Address, d.Scores, d.Contributions)
			}
			sum := 0.0
			for name, c := range d.Contributions {
				if !slices.Contains(ScorerNames(), name) {
					t.Fatalf("contribution label %q is not a scorer name", name)
				}
				sum += c
			}
			on := 0
			for _, w := range DefaultConfig().Scorers {
				if w > 0 {
					on++
				}
			}
			if math.Abs(sum-d.Scores[0]) > 1e-9 || len(d.Contributions) != on {
				t.Fatalf("contributions %v add to %v, score %v", d.Contributions, sum, d.Scores[0])
			}
		})
	}
}

// TestDefaultMixPrefixAffinity: a repeated prompt goes back to where it
// went, unless that endpoint is much busier.
func TestDefaultMixPrefixAffinity(t *testing.T) {
	t.Parallel()
	e := eps(4)
	p := newDefault(t, 9, nil)
	prompt := []byte(fmt.Sprintf("%01024d", 7))
	r := &Request{Model: "m", PromptPrefix: prompt}
	first, err := p.Pick(r, view(e), 1)
	if err != nil {
		t.Fatal(err)
	}
	p.Finished(first[0].Address)
	again, err := p.Pick(r, view(e), 1)
	if err != nil {
		t.Fatal(err)
	}
	if again[0] != first[0] {
		t.Fatalf("repeat went to %s, first to %s", again[0].Address, first[0].Address)
	}
}

// orderFilter is a custom filter: it drops one endpoint and may reverse.
type orderFilter struct {
	drop    string
	reverse bool
}

func (orderFilter) Name() string { return "order" }
func (f orderFilter) Filter(_ *Request, in, out []*store.Endpoint) []*store.Endpoint {
	for _, e := range in {
		if e.Address != f.drop {
			out = append(out, e)
		}
	}
	if f.reverse {
		slices.Reverse(out)
	}
	return out
}

func TestCustomFiltersAndScorers(t *testing.T) {
	t.Parallel()
	e := eps(5, func(i int, e *store.Endpoint) { e.Pod.ModelServer.KvCacheUsage = ptr(float64(i) / 10) })
	for _, reverse := range []bool{false, true} {
		p := NewPicker(Parts{
			Filters: []Filter{orderFilter{drop: e[0].Address, reverse: reverse}, NewHealthFilter(nil, 0)},
			Scorers: []Weighted{{KVCacheScorer{}, 1}, {QueueScorer{NewTracker(nil)}, 1}}, // a tracker of its own
			Rand:    seeded(1),
		})
		got, err := p.Pick(&Request{}, view(e), 5)
		if err != nil {
			t.Fatal(err)
		}
		if want := []*store.Endpoint{e[1], e[2], e[3], e[4]}; !slices.Equal(got, want) {
			t.Fatalf("reverse=%v: got %v", reverse, got)
		}
	}
}

func TestNoEndpoint(t *testing.T) {
	t.Parallel()
	p := newDefault(t, 1, nil)
	for _, v := range []*store.View{nil, view(nil)} {
		if _, err := p.Pick(&Request{}, v, 1); !errors.Is(err, ErrNoEndpoint) {
			t.Fatalf("err %v, want ErrNoEndpoint", err)
		}
	}
	drop := NewPicker(Parts{Filters: []Filter{orderFilter{drop: ep(0).Address}}, Scorers: []Weighted{{KVCacheScorer{}, 1}}})
	if _, err := drop.Pick(&Request{}, view(eps(1)), 1); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("filtered out: err %v, want ErrNoEndpoint", err)
	}
}

// TestConcurrentPicks exercises the picker's shared state under -race:
// picks, finishes, observations and view changes at once.
func TestConcurrentPicks(t *testing.T) {
	t.Parallel()
	p := newDefault(t, 1, nil)
	views := []*store.View{view(eps(16)), view(eps(24))}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				v := views[(g+i)%2]
				got, err := p.Pick(&Request{Model: "m", PromptPrefix: []byte(fmt.Sprintf("%0600d", i%5)), Sheddable: i%3 == 0}, v, 2)
				if err != nil {
					t.Error(err)
					return
				}
				p.Observe(got[0].Address, time.Duration(i)*time.Millisecond, time.Millisecond)
				p.Finished(got[0].Address)
			}
		})
	}
	wg.Wait()
	for _, e := range views[1].Endpoints {
		if n := p.Tracker().InFlight(e.Address); n != 0 {
			t.Fatalf("%s: %d still in flight", e.Address, n)
		}
	}
}

// TestStaleEndpointsAreUnknown: endpoints whose node's report expired stay
// eligible, and the scorers that read telemetry give them the mean of the
// endpoints with fresh telemetry; frozen readings neither help nor hurt.
func TestStaleEndpointsAreUnknown(t *testing.T) {
	t.Parallel()
	e := eps(4, func(i int, e *store.Endpoint) {
		e.Stale = i >= 2
		e.Pod.ModelServer.WaitingRequests = []float64{0, 4, 50, 50}[i] // 50: frozen, not trusted
	})
	p := newDefault(t, 3, nil)
	d, err := p.Decide(&Request{}, view(e), 4)
	if err != nil {
		t.Fatal(err)
	}
	if d.Degraded || d.Candidates != 4 || d.Endpoints[0] != e[0] || d.Endpoints[3] != e[1] {
		t.Fatalf("degraded %v, candidates %d, ranking %v; want e0 first, the stale pair (mean) next, e1 (queue 4) last",
			d.Degraded, d.Candidates, d.Endpoints)
	}
	// The stale endpoints' frozen queues stay out of the fresh ones' scale:
	// queue 0 scores 1 and queue 4 scores 0.
	qs := make([]float64, 4)
	QueueScorer{Tracker: NewTracker(time.Now)}.Score(&Request{}, e, qs)
	if qs[0] != 1 || qs[1] != 0 {
		t.Fatalf("queue scores %v: want 1 and 0 for the fresh endpoints", qs)
	}
	// Every endpoint stale: in-flight requests alone decide.
	for _, x := range e {
		x.Stale = true
	}
	p.Tracker().Picked(e[0].Address)
	if d, err = p.Decide(&Request{}, view(e), 4); err != nil || !d.Degraded || d.Candidates != 4 || d.Endpoints[3] != e[0] {
		t.Fatalf("all stale: degraded %v, candidates %d, last %v, err %v; want degraded, 4, e0 (one in flight) last", d.Degraded, d.Candidates, d.Endpoints[3], err)
	}
}
