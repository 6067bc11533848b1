package modelsim

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLookupProfile(t *testing.T) {
	t.Parallel()
	if got := strings.Join(ProfileNames(), ","); got != "a100,h100,h200,slow" {
		t.Errorf("ProfileNames = %s", got)
	}
	for _, name := range []string{"h100", "a100", "h200", " H100 "} {
		p, err := LookupProfile(name)
		if err != nil || p.Validate() != nil || p.Name != strings.ToLower(strings.TrimSpace(name)) {
			t.Errorf("LookupProfile(%q) = %+v, %v", name, p, err)
		}
	}
	_, err := LookupProfile("b200")
	if !errors.Is(err, ErrUnknownProfile) || !strings.Contains(err.Error(), "a100, h100, h200") {
		t.Errorf("LookupProfile(b200) error = %v, want ErrUnknownProfile listing the names", err)
	}
	// The A100 is about 1.7× slower than the H100 in prefill and decode.
	h, _ := LookupProfile("h100")
	a, _ := LookupProfile("a100")
	if r := h.PrefillTokensPerSecond / a.PrefillTokensPerSecond; r < 1.6 || r > 1.8 {
		t.Errorf("prefill ratio %.2f", r)
	}
	if r := float64(a.DecodeStepBase) / float64(h.DecodeStepBase); r < 1.6 || r > 1.8 {
		t.Errorf("decode ratio %.2f", r)
	}
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	h, _ := LookupProfile("h100")
	// B=8, P=512, O=128: 8 / (128·0.025 + 8·127·0.001 + 8·512/12000).
	want := 8 / (128*0.025 + 8*127*0.001 + 8*512/12000.0)
	if got := h.Capacity(512, 128); math.Abs(got-want) > 1e-9 {
		t.Errorf("Capacity(512, 128) = %v, want %v", got, want)
	}
	if h.Capacity(512, 256) >= h.Capacity(512, 128) || h.Capacity(2048, 128) >= h.Capacity(512, 128) {
		t.Error("capacity does not fall with longer requests")
	}
	a, _ := LookupProfile("a100")
	if a.Capacity(512, 128) >= h.Capacity(512, 128) {
		t.Error("a100 is not slower than h100")
	}
	// KV-bound: 8 × (8000 + 500) tokens do not fit 16384; about 1.9 do.
	b := 16384.0 / 8500
	kvBound := b / (1000*0.025 + b*999*0.001 + b*8000/12000)
	if got := h.Capacity(8000, 1000); math.Abs(got-kvBound) > 1e-9 {
		t.Errorf("KV-bound Capacity = %v, want %v", got, kvBound)
	}
	if (Profile{}).Capacity(1, 1) != 0 {
		t.Error("an invalid profile has capacity")
	}
}

func TestCountTokens(t *testing.T) {
	t.Parallel()
	for text, want := range map[string]int{"": 0, "a": 1, "abcd": 1, "abcde": 2, "héllo": 2, promptOf(25): 25} {
		if got := CountTokens(text); got != want {
			t.Errorf("CountTokens(%q) = %d, want %d", text, got, want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	ok := Options{Name: "a", Model: "m", Profile: fastProfile()}
	tests := []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"no name", func(o *Options) { o.Name = "" }, "name is empty"},
		{"no model", func(o *Options) { o.Model = "" }, "model is empty"},
		{"no profile", func(o *Options) { o.Profile = Profile{} }, "prefill rate"},
		{"zero batch", func(o *Options) { o.Profile.MaxRunning = 0 }, "max running 0"},
		{"zero step", func(o *Options) { o.Profile.DecodeStepBase = 0 }, "decode step base"},
		{"no kv", func(o *Options) { o.Profile.KVCacheTokens = 0 }, "KV cache"},
		{"no chunk", func(o *Options) { o.Profile.MaxBatchedTokens = 0 }, "max batched tokens"},
		{"negative flush", func(o *Options) { o.FlushInterval = -1 }, "flush interval"},
		{"negative queue", func(o *Options) { o.MaxWaiting = -1 }, "max waiting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := ok
			tc.edit(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	s, err := New(ok)
	if err != nil || s.flush != DefaultFlushInterval || s.maxWaiting != DefaultMaxWaiting || s.loadWindow != DefaultLoadWindow {
		t.Errorf("defaults: %v %+v", err, s)
	}
}

// TestCapacityMatchesSimulation runs a saturated server and compares its
// completed rate with Capacity. The bound is loose (±35%) because the run
// is short and real-time: requests complete in batches, so a few seconds
// hold only a few dozen completions, and a loaded machine's timers fire
// late (the scheduler catches up on small delays, not on large ones). It
// does not run in parallel with the other tests.
func TestCapacityMatchesSimulation(t *testing.T) {
	// 10 ms a full-batch step: 8 ms + 4 × 0.5 ms.
	prof := Profile{Name: "cap", PrefillTokensPerSecond: 200000, DecodeStepBase: 8 * time.Millisecond,
		DecodeStepPerSeq: 500 * time.Microsecond, KVCacheTokens: 100000, MaxRunning: 4, MaxBatchedTokens: 4096}
	const prompt, output = 40, 20
	ts := start(t, func(o *Options) { o.Profile = prof }, true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var errs atomic.Int64
	for range 2 * prof.MaxRunning { // keep the queue full
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, _, err := call(ctx, "POST", ts.URL+"/v1/completions",
					map[string]any{"prompt": promptOf(prompt), "max_tokens": output})
				if err == nil && resp.StatusCode != 200 {
					errs.Add(1)
				}
			}
		})
	}
	time.Sleep(500 * time.Millisecond) // warm up
	c0, t0 := ts.Stats().Completed, time.Now()
	time.Sleep(3 * time.Second)
	c1, t1 := ts.Stats().Completed, time.Now()
	cancel()
	wg.Wait()
	got := float64(c1-c0) / t1.Sub(t0).Seconds()
	want := prof.Capacity(prompt, output)
	t.Logf("completed %.1f req/s, Capacity %.1f req/s", got, want)
	if got < 0.65*want || got > 1.35*want {
		t.Errorf("completed %.1f req/s, Capacity says %.1f (±35%%)", got, want)
	}
	if errs.Load() != 0 {
		t.Errorf("%d requests failed", errs.Load())
	}
}
