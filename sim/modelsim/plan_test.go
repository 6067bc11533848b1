package modelsim

import (
	"testing"
	"time"
)

// stepper drives the scheduler by hand, one plan and commit at a time,
// with no clock: the model's decisions, checked exactly.
type stepper struct {
	t  *testing.T
	s  *Server
	it iteration
}

func newStepper(t *testing.T, p Profile) *stepper {
	s, err := New(Options{Name: "unit", Model: "m", Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	return &stepper{t: t, s: s}
}

func (st *stepper) add(prompt, maxTokens int) *request {
	r := newRequest(prompt, maxTokens)
	if err := st.s.enqueue(r); err != nil {
		st.t.Fatal(err)
	}
	return r
}

// step plans and commits one iteration and returns its plan.
func (st *stepper) step() (prefill map[*request]int, decode []*request, dur time.Duration, ok bool) {
	if !st.s.plan(&st.it) {
		return nil, nil, 0, false
	}
	prefill = map[*request]int{}
	for _, c := range st.it.prefill {
		prefill[c.r] = c.n
	}
	decode = append(decode, st.it.decode...)
	dur = st.it.dur
	st.s.commit(&st.it)
	return prefill, decode, dur, true
}

func TestPlanChunkedPrefillAndBatching(t *testing.T) {
	t.Parallel()
	st := newStepper(t, Profile{Name: "unit", PrefillTokensPerSecond: 1000, DecodeStepBase: 10 * time.Millisecond,
		DecodeStepPerSeq: time.Millisecond, KVCacheTokens: 1000, MaxRunning: 2, MaxBatchedTokens: 100})
	a, b, c := st.add(150, 3), st.add(30, 2), st.add(10, 2)
	type want struct {
		prefill map[*request]int
		decode  []*request
		dur     time.Duration
		tokens  [3]int64 // a, b, c after the iteration
	}
	steps := []want{
		// a's prompt is chunked: 100 of 150 tokens, the whole budget.
		{map[*request]int{a: 100}, nil, 10*time.Millisecond + 100*time.Millisecond, [3]int64{0, 0, 0}},
		// The rest of a and all of b; both get their first token; c waits
		// (the batch is full).
		{map[*request]int{a: 50, b: 30}, nil, 10*time.Millisecond + 80*time.Millisecond, [3]int64{1, 1, 0}},
		{map[*request]int{}, []*request{a, b}, 12 * time.Millisecond, [3]int64{2, 2, 0}},
		// b finished: c is admitted and prefilled beside a's decode.
		{map[*request]int{c: 10}, []*request{a}, 11*time.Millisecond + 10*time.Millisecond, [3]int64{3, 2, 1}},
		{map[*request]int{}, []*request{c}, 11 * time.Millisecond, [3]int64{3, 2, 2}},
	}
	for i, w := range steps {
		prefill, decode, dur, ok := st.step()
		if !ok {
			t.Fatalf("step %d: no work", i)
		}
		if len(prefill) != len(w.prefill) || len(decode) != len(w.decode) || dur != w.dur {
			t.Errorf("step %d: prefill %d, decode %d, %s; want %d, %d, %s", i, len(prefill), len(decode), dur, len(w.prefill), len(w.decode), w.dur)
		}
		for r, n := range w.prefill {
			if prefill[r] != n {
				t.Errorf("step %d: prefill %d, want %d", i, prefill[r], n)
			}
		}
		for j, r := range []*request{a, b, c} {
			if got := r.progress.Load(); got != w.tokens[j] {
				t.Errorf("step %d: request %d has %d tokens, want %d", i, j, got, w.tokens[j])
			}
		}
	}
	if _, _, _, ok := st.step(); ok {
		t.Error("work left after every request finished")
	}
	if s := st.s.Stats(); s.Completed != 3 || s.PromptTokens != 190 || s.GeneratedTokens != 7 || s.KVUsage != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestPlanPreemptionByRecompute(t *testing.T) {
	t.Parallel()
	st := newStepper(t, Profile{Name: "unit", PrefillTokensPerSecond: 1e6, DecodeStepBase: time.Millisecond,
		KVCacheTokens: 40, MaxRunning: 2, MaxBatchedTokens: 100})
	a, b := st.add(10, 25), st.add(10, 25)
	var sawPreempt bool
	for i := 0; ; i++ {
		before := b.progress.Load()
		prefill, _, _, ok := st.step()
		if !ok {
			break
		}
		if i > 100 {
			t.Fatal("no end")
		}
		if b.progress.Load() < before {
			t.Fatalf("step %d: b's tokens went back", i)
		}
		if s := st.s.Stats(); s.KVUsage > 1 {
			t.Fatalf("step %d: KV usage %v", i, s.KVUsage)
		}
		if s := st.s.Stats(); s.Preempted == 1 && !sawPreempt {
			sawPreempt = true
			// b, the most recently admitted, was preempted with 10 tokens
			// and is back at the head of the queue.
			if s.Waiting != 1 || s.Running != 1 || b.progress.Load() != 10 || b.state != stateWaiting {
				t.Errorf("after preemption: %+v, b has %d tokens", s, b.progress.Load())
			}
		}
		if n, ok := prefill[b]; ok && b.progress.Load() > 1 && n != 20 {
			t.Errorf("b readmitted prefills %d tokens, want prompt + 10 generated = 20", n)
		}
	}
	s := st.s.Stats()
	if !sawPreempt || s.Preempted != 1 || s.Completed != 2 || a.progress.Load() != 25 || b.progress.Load() != 25 || s.GeneratedTokens != 50 {
		t.Errorf("stats = %+v, a %d, b %d tokens", s, a.progress.Load(), b.progress.Load())
	}
}
