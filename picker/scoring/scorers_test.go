package scoring

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func near(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Abs(x-y) < 1e-9 })
}

func TestStaticScorers(t *testing.T) {
	t.Parallel()
	gpu := func(free, total uint64, sm, util *float64, throttle uint64) *telemetryv1.GPU {
		return &telemetryv1.GPU{MemoryFreeBytes: free, MemoryTotalBytes: total, SmActive: sm, Utilization: util, ThrottleReasons: throttle}
	}
	tests := []struct {
		name   string
		scorer Scorer
		mut    []func(e *store.Endpoint)
		want   []float64
	}{
		{"kv-cache", KVCacheScorer{}, []func(e *store.Endpoint){
			func(e *store.Endpoint) { e.Pod.ModelServer.KvCacheUsage = ptr(0.0) },
			func(e *store.Endpoint) { e.Pod.ModelServer.KvCacheUsage = ptr(0.75) },
			func(e *store.Endpoint) { e.Pod.ModelServer.KvCacheUsage = nil },
			func(e *store.Endpoint) { e.Pod.ModelServer.KvCacheUsage = ptr(1.5) },
			func(e *store.Endpoint) { e.Pod = nil },
		}, []float64{1, 0.25, 0.5, 0, 0.5}},
		{"vram", VRAMScorer{}, []func(e *store.Endpoint){
			func(e *store.Endpoint) { e.GPUs = []*telemetryv1.GPU{gpu(60, 80, nil, nil, 0)} },
			func(e *store.Endpoint) {
				e.GPUs = []*telemetryv1.GPU{gpu(0, 80, nil, nil, 0), gpu(80, 80, nil, nil, 0)}
			},
			func(e *store.Endpoint) { e.GPUs = nil },
			func(e *store.Endpoint) { e.GPUs = []*telemetryv1.GPU{gpu(90, 80, nil, nil, 0)} },
		}, []float64{0.75, 0.5, 0.5, 1}},
		{"sm-activity", SMActivityScorer{}, []func(e *store.Endpoint){
			func(e *store.Endpoint) { e.GPUs = []*telemetryv1.GPU{gpu(0, 0, ptr(0.9), nil, 0)} },
			func(e *store.Endpoint) {
				e.GPUs = []*telemetryv1.GPU{gpu(0, 0, ptr(0.2), nil, 0), gpu(0, 0, ptr(0.4), nil, 0)}
			},
			func(e *store.Endpoint) { e.GPUs = []*telemetryv1.GPU{gpu(0, 0, nil, ptr(0.6), 0)} },
			func(e *store.Endpoint) { e.GPUs = []*telemetryv1.GPU{gpu(0, 0, nil, nil, 0)} },
		}, []float64{0.1, 0.7, 0.4, 0.5}},
		{"throttle", ThrottleScorer{}, []func(e *store.Endpoint){
			func(e *store.Endpoint) { e.GPUs[0].ThrottleReasons = 0 },
			func(e *store.Endpoint) { e.GPUs[0].ThrottleReasons = 0x1 },  // idle
			func(e *store.Endpoint) { e.GPUs[0].ThrottleReasons = 0x40 }, // HW thermal
			func(e *store.Endpoint) { e.GPUs[0].ThrottleReasons = 0x4 },  // SW power cap
			func(e *store.Endpoint) { e.GPUs = nil },
		}, []float64{1, 1, 0, 0, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := eps(len(tc.mut), func(i int, e *store.Endpoint) { tc.mut[i](e) })
			if got := score(tc.scorer, &Request{}, e); !near(got, tc.want) {
				t.Fatalf("scores %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoRAScorer(t *testing.T) {
	t.Parallel()
	lora := func(max uint32, running, waiting []string) func(int, *store.Endpoint) {
		return func(_ int, e *store.Endpoint) {
			e.Pod.ModelServer.Lora = &telemetryv1.LoRA{Running: running, Waiting: waiting, MaxAdapters: max}
		}
	}
	tests := []struct {
		name    string
		adapter string
		mut     func(int, *store.Endpoint)
		want    float64
	}{
		{"no adapter asked", "", lora(1, []string{"a"}, nil), 1},
		{"running", "a", lora(2, []string{"a", "b"}, nil), 1},
		{"waiting", "a", lora(2, []string{"b", "c"}, []string{"a"}), 1},
		{"room for one more", "a", lora(3, []string{"b"}, []string{"c"}), 0.5},
		{"full", "a", lora(2, []string{"b"}, []string{"c", "b"}), 0},
		{"no adapter state", "a", func(int, *store.Endpoint) {}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := score(LoRAScorer{}, &Request{LoRA: tc.adapter}, eps(1, tc.mut))
			if !near(got, []float64{tc.want}) {
				t.Fatalf("score %v, want %v", got[0], tc.want)
			}
		})
	}
}

func TestQueueScorer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		w      []float64
		picked []int // endpoint indices picked after the sample
		before []int // picked before the sample (already in the report)
		want   []float64
	}{
		{"all empty", []float64{0, 0}, nil, nil, []float64{1, 1}},
		{"against the max", []float64{0, 2, 4}, nil, nil, []float64{1, 0.5, 0}},
		{"garbage readings", []float64{math.NaN(), -3, 4}, nil, nil, []float64{1, 1, 0}},
		{"picks since the report add", []float64{0, 2}, []int{0, 0, 0, 0}, nil, []float64{0, 0.5}},
		{"picks before the report do not", []float64{0, 2}, nil, []int{0, 0, 0, 0}, []float64{1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := eps(len(tc.w), func(i int, e *store.Endpoint) { e.Pod.ModelServer.WaitingRequests = tc.w[i] })
			after := NewTracker(func() time.Time { return t0.Add(time.Second) })
			before := NewTracker(func() time.Time { return t0.Add(-time.Second) })
			for _, i := range tc.picked {
				after.Picked(e[i].Address)
			}
			for _, i := range tc.before {
				before.Picked(e[i].Address)
			}
			tr := after
			if len(tc.before) > 0 {
				tr = before
			}
			if got := score(QueueScorer{tr}, &Request{}, e); !near(got, tc.want) {
				t.Fatalf("scores %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInFlightScorer(t *testing.T) {
	t.Parallel()
	e := eps(3)
	tr := NewTracker(nil)
	if got := score(InFlightScorer{tr}, &Request{}, e); !near(got, []float64{1, 1, 1}) {
		t.Fatalf("idle: %v", got)
	}
	for range 4 {
		tr.Picked(e[0].Address)
	}
	tr.Picked(e[1].Address)
	tr.Picked(e[1].Address)
	tr.Finished(e[0].Address)
	tr.Finished(e[0].Address) // e0: 2, e1: 2
	tr.Picked(e[0].Address)   // e0: 3
	if got := score(InFlightScorer{tr}, &Request{}, e); !near(got, []float64{0, 1.0 / 3, 1}) {
		t.Fatalf("busy: %v", got)
	}
}

func TestTracker(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{t: t0}
	tr := NewTracker(clk.now)
	const a = "10.0.0.1:8000"
	for range 3 {
		clk.add(time.Second)
		tr.Picked(a) // at t0+1s, +2s, +3s
	}
	checks := []struct {
		sample time.Time
		want   int
	}{{time.Time{}, 3}, {t0, 3}, {t0.Add(1500 * time.Millisecond), 2}, {t0.Add(3 * time.Second), 0}, {t0.Add(1500 * time.Millisecond), 2}}
	for _, c := range checks {
		if got := tr.Since(a, c.sample); got != c.want {
			t.Errorf("Since(%v) = %d, want %d", c.sample, got, c.want)
		}
	}
	clk.add(time.Second)
	tr.Picked(a) // t0+4s, counted into the cache for t0+1.5s
	if got, want := tr.Since(a, t0.Add(1500*time.Millisecond)), 3; got != want {
		t.Errorf("cached Since after a pick = %d, want %d", got, want)
	}
	tr.Finished(a) // retires the oldest (t0+1s), not after t0+1.5s
	if got, want := tr.Since(a, t0.Add(1500*time.Millisecond)), 3; got != want {
		t.Errorf("after one finish, Since = %d, want %d", got, want)
	}
	tr.Finished(a) // retires t0+2s
	if got, want := tr.Since(a, t0.Add(1500*time.Millisecond)), 2; got != want {
		t.Errorf("after two finishes, Since = %d, want %d", got, want)
	}
	if got := tr.Since(a, t0); got != 2 || tr.InFlight(a) != 2 {
		t.Errorf("Since(t0) = %d, in flight %d, want 2 and 2", got, tr.InFlight(a))
	}
	tr.Finished(a)
	tr.Finished(a)
	tr.Finished(a) // one too many: ignored
	if tr.InFlight(a) != 0 || tr.Since(a, time.Time{}) != 0 {
		t.Errorf("after all finished: in flight %d", tr.InFlight(a))
	}
	tr.Finished("10.9.9.9:1") // never picked: ignored
}

func TestSpeedScorer(t *testing.T) {
	t.Parallel()
	e := eps(4)
	s := NewSpeedScorer(0.5)
	if got := score(s, &Request{}, e); !near(got, []float64{1, 1, 1, 1}) {
		t.Fatalf("nothing observed: %v", got)
	}
	ms := time.Millisecond
	s.Observe(e[0].Address, 100*ms, 10*ms)
	s.Observe(e[1].Address, 200*ms, 20*ms)
	s.Observe(e[2].Address, 400*ms, 0) // no TPOT: TTFT alone
	s.Observe(e[3].Address, 0, 0)      // nothing: stays unknown
	got := score(s, &Request{}, e)
	want := []float64{1, 0.5, 0.25, (1 + 0.5 + 0.25) / 3}
	if !near(got, want) {
		t.Fatalf("scores %v, want %v", got, want)
	}
	s.Observe(e[1].Address, 0, 40*ms) // EWMA: 20 + 0.5×(40−20) = 30
	if ttft, tpot := s.Speed(e[1].Address); ttft != 200*ms || tpot != 30*ms {
		t.Fatalf("speed %v %v, want 200ms 30ms", ttft, tpot)
	}
}

func TestPrefixScorer(t *testing.T) {
	t.Parallel()
	e := eps(3)
	p := NewPrefixScorer(PrefixConfig{BlockSize: 4, MaxBlocks: 4, Capacity: 100})
	req := func(model, prompt string) *Request { return &Request{Model: model, PromptPrefix: []byte(prompt)} }
	p.RecordPick(req("m", "aaaabbbbccccdddd"), e[0])
	p.RecordPick(req("m", "aaaabbbbxxxx"), e[1])
	tests := []struct {
		name string
		r    *Request
		want []float64
	}{
		{"whole prefix on e0", req("m", "aaaabbbbccccdddd"), []float64{1, 0.5, 0}},
		{"first two blocks on both", req("m", "aaaabbbbzzzzzzzz"), []float64{0.5, 0.5, 0}},
		{"e1's prefix", req("m", "aaaabbbbxxxx"), []float64{2.0 / 3, 1, 0}},
		{"other model", req("n", "aaaabbbbccccdddd"), []float64{0, 0, 0}},
		{"shorter than a block", req("m", "aaa"), []float64{0, 0, 0}},
		{"different first block", req("m", "zaaabbbbccccdddd"), []float64{0, 0, 0}},
	}
	for _, tc := range tests {
		if got := score(p, tc.r, e); !near(got, tc.want) {
			t.Errorf("%s: scores %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPrefixScorerBounded(t *testing.T) {
	t.Parallel()
	p := NewPrefixScorer(PrefixConfig{BlockSize: 8, MaxBlocks: 8, Capacity: 16})
	e := eps(prefixWays + 2)
	for i := range 100 {
		prompt := []byte("0123456789abcdef0123456789abcdef")
		prompt[0] = byte(i)
		p.RecordPick(&Request{PromptPrefix: prompt}, e[i%len(e)])
	}
	if p.Len() != 16 {
		t.Fatalf("LRU holds %d blocks, want its capacity 16", p.Len())
	}
	// One block remembers at most prefixWays endpoints, most recent first.
	r := &Request{PromptPrefix: []byte("same-pre")}
	for _, x := range e {
		p.RecordPick(r, x)
	}
	if got, want := score(p, r, e), []float64{0, 0, 1, 1, 1, 1}; !near(got, want) {
		t.Fatalf("scores %v, want %v", got, want)
	}
}

func TestScorerNames(t *testing.T) {
	t.Parallel()
	tr := NewTracker(nil)
	got := []string{NewWaitScorer(WaitConfig{}, NewRates(0), tr, nil).Name(), QueueScorer{tr}.Name(), KVCacheScorer{}.Name(), InFlightScorer{tr}.Name(),
		NewPrefixScorer(PrefixConfig{}).Name(), LoRAScorer{}.Name(), NewSpeedScorer(0).Name(),
		VRAMScorer{}.Name(), SMActivityScorer{}.Name(), ThrottleScorer{}.Name()}
	if !slices.Equal(got, ScorerNames()) {
		t.Fatalf("names %v, want %v", got, ScorerNames())
	}
}
