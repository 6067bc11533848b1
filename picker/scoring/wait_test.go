package scoring

import (
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
)

// waitPicker is a picker with the expected-wait scorer alone (plus the
// in-flight scorer the degraded mode adds), on clk.
func waitPicker(t *testing.T, clk *fakeClock, weights map[string]float64) *Picker {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Scorers = weights
	p, err := New(cfg, seeded(3), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// teach makes the picker learn the servers' rates: two views of their
// histograms, a request served by each in between.
func teach(p *Picker, servers []*server, svc []float64) {
	read := func() *store.View {
		e := make([]*store.Endpoint, len(servers))
		for i, s := range servers {
			e[i] = s.reading(i)
		}
		return view(e)
	}
	p.state(read())
	for i, s := range servers {
		s.serve(100, 0.01*svc[i], svc[i])
	}
	p.state(read())
}

// hetPool is three fast servers (a request holds a slot 4 s, 8 slots) and
// one slow one (10 s, 4 slots), all seen full once; load sets each one's
// running and waiting requests.
func hetPool(t *testing.T, p *Picker, load [][2]float64) (*store.View, []*server) {
	t.Helper()
	servers := make([]*server, 4)
	svc := []float64{4, 4, 4, 10}
	for i := range servers {
		slots := 8.0
		if i == 3 {
			slots = 4
		}
		servers[i] = &server{running: slots, waiting: 1}
	}
	teach(p, servers, svc)
	e := make([]*store.Endpoint, len(servers))
	for i, s := range servers {
		s.running, s.waiting = load[i][0], load[i][1]
		e[i] = s.reading(i)
	}
	return view(e), servers
}

// The tail of a heterogeneous pool is made on its slow pods: a request
// that waits behind one request there waits 2.5 s (a slot every 10/4 s),
// behind one on a fast pod 0.5 s (4/8). With one request queued on every
// pod, equalising queues (the old default's signal) cannot tell them
// apart; the expected wait never sends the request to the slow pod. And
// where the slow pod has a free slot while every fast one is full, it is
// where the request starts soonest.
func TestWaitAvoidsSlowQueue(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: t0.Add(50 * time.Millisecond)}
	wait := map[string]float64{ScorerWait: 1}
	queued := [][2]float64{{8, 1}, {8, 1}, {8, 1}, {4, 1}}
	for range 20 {
		p := waitPicker(t, clk, wait)
		v, _ := hetPool(t, p, queued)
		got, err := p.Pick(&Request{Model: "m"}, v, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] == v.Endpoints[3] {
			t.Fatalf("a request went to the slow pod's queue (estimates %v)", p.wait.Estimate(&Request{}, v.Endpoints))
		}
	}
	// The EPP's load scorers, same pool: queue and KV equal everywhere,
	// so the slow pod gets its quarter.
	slow := 0
	for seed := range uint64(200) {
		cfg := DefaultConfig()
		cfg.Scorers = map[string]float64{ScorerQueue: 2, ScorerKVCache: 2}
		old, err := New(cfg, seeded(seed), clk.now)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := hetPool(t, old, queued)
		got, err := old.Pick(&Request{Model: "m"}, v, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] == v.Endpoints[3] {
			slow++
		}
	}
	if slow < 20 {
		t.Errorf("queue and KV sent %d of 200 to the slow pod's queue; the comparison means nothing", slow)
	}

	p := waitPicker(t, clk, wait)
	v, _ := hetPool(t, p, [][2]float64{{8, 0}, {8, 0}, {8, 0}, {3, 0}})
	got, err := p.Pick(&Request{Model: "m"}, v, 1)
	if err != nil || got[0] != v.Endpoints[3] {
		t.Fatalf("picked %v (%v); want the slow pod's free slot over three full fast pods (estimates %v)", got, err, p.wait.Estimate(&Request{}, v.Endpoints))
	}
}

// This replica's own picks since the report raise an endpoint's load at
// once: a burst spreads over the free slots instead of herding.
func TestWaitSpreadsBurst(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: t0.Add(50 * time.Millisecond)}
	p := waitPicker(t, clk, map[string]float64{ScorerWait: 1})
	v, _ := hetPool(t, p, [][2]float64{{6, 0}, {6, 0}, {6, 0}, {0, 0}})
	got := map[int]int{}
	for range 10 {
		e, err := p.Pick(&Request{Model: "m"}, v, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range v.Endpoints {
			if x == e[0] {
				got[i]++
			}
		}
	}
	// Free slots: 2+2+2 fast, 4 slow; fast ones first, then the slow pod.
	if got[0] != 2 || got[1] != 2 || got[2] != 2 || got[3] != 4 {
		t.Fatalf("10 picks over free slots 2/2/2/4: %v", got)
	}
}

// When the agent is gone, an endpoint's last load drains over the
// report's age at its learnt rate; and with every report stale, the
// degraded pick still ranks by the learnt rates, not by in-flight
// requests alone.
func TestWaitStaleReportDrains(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: t0.Add(50 * time.Millisecond)}
	p := waitPicker(t, clk, map[string]float64{ScorerWait: 1}) // the fallback has more scorers than the mix
	v, _ := hetPool(t, p, [][2]float64{{8, 4}, {8, 4}, {8, 4}, {4, 4}})
	for _, e := range v.Endpoints {
		e.Stale = true
	}
	est := func() []time.Duration { return p.wait.Estimate(&Request{}, v.Endpoints) }
	before := est()
	// Fast: 12 requests there, 8 slots, 0.5 s a slot: 2.5 s.
	if w := before[0]; w < 2400*time.Millisecond || w > 2700*time.Millisecond {
		t.Fatalf("fast pod's wait %v at the report's sample, want about 2.5 s", w)
	}
	clk.add(1500 * time.Millisecond) // 3 of its 12 drained
	if w := est()[0]; w < 850*time.Millisecond || w > 1100*time.Millisecond {
		t.Fatalf("fast pod's wait %v after 1.5 s, want about 1 s", w)
	}
	// A fresh report whose scrape failed: its values are as old as their
	// sample, and drain the same.
	v.Endpoints[0].Stale = false
	v.Endpoints[0].Pod.ModelServer.Stale = true
	if w := est()[0]; w < 850*time.Millisecond || w > 1100*time.Millisecond {
		t.Fatalf("fast pod's wait %v after 1.5 s with its scrape failing, want about 1 s", w)
	}
	v.Endpoints[0].Stale, v.Endpoints[0].Pod.ModelServer.Stale = true, false
	d, err := p.Decide(&Request{Model: "m"}, v, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Degraded || d.Endpoints[0] == v.Endpoints[3] {
		t.Fatalf("degraded %v, picked %s: want a fast pod by the learnt rates", d.Degraded, d.Endpoints[0].Address)
	}
	if _, ok := d.Contributions[ScorerWait]; !ok {
		t.Fatalf("degraded pick without the wait estimate: %v", d.Contributions)
	}
}

// Prefix affinity is time: a prompt whose leading blocks went to an
// endpoint lately needs less prefill there.
func TestWaitPrefixIsTime(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: t0.Add(50 * time.Millisecond)}
	p := waitPicker(t, clk, map[string]float64{ScorerWait: 1, ScorerPrefixCache: 0.001})
	v, _ := hetPool(t, p, [][2]float64{{1, 0}, {1, 0}, {1, 0}, {1, 0}})
	prompt := make([]byte, 4096)
	for i := range prompt {
		prompt[i] = byte('a' + i%23)
	}
	r := &Request{Model: "m", PromptPrefix: prompt, PromptBytes: 40000}
	p.prefixScorer().RecordPick(r, v.Endpoints[2])
	est := p.wait.Estimate(r, v.Endpoints)
	if !(est[2] < est[0]) || !(est[2] < est[1]) {
		t.Fatalf("estimates %v: want the endpoint holding the prefix lower than its twins", est)
	}
}

// prefixScorer returns the picker's prefix scorer.
func (p *Picker) prefixScorer() *PrefixScorer { return p.wait.prefix }
