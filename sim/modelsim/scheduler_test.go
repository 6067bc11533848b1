package modelsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// timed sends a non-streaming completion and returns its latency and the
// number of tokens it got.
func timed(t *testing.T, url string, prompt, output int) (time.Duration, int) {
	t.Helper()
	begin := time.Now()
	resp, data := post(t, url+"/v1/completions", map[string]any{"prompt": promptOf(prompt), "max_tokens": output})
	took := time.Since(begin)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d: %s", resp.StatusCode, data)
		return took, 0
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil || len(w.Choices) != 1 {
		t.Errorf("bad response %s: %v", data, err)
		return took, 0
	}
	return took, len(strings.Fields(*w.Choices[0].Text))
}

func TestBatchingQueuesBeyondMaxRunning(t *testing.T) {
	t.Parallel()
	ts := start(t, func(o *Options) { o.Profile.MaxRunning = 2 }, true)
	body := map[string]any{"prompt": promptOf(4), "max_tokens": 40, "stream": true}
	results := make([]streamResult, 3)
	var wg sync.WaitGroup
	send := func(i int) {
		wg.Go(func() {
			res, err := stream(context.Background(), ts.URL+"/v1/completions", body)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
			results[i] = res
		})
	}
	send(0)
	send(1)
	waitFor(t, "two running", func() bool { return ts.Stats().Running == 2 })
	send(2)
	waitFor(t, "the third waiting", func() bool { st := ts.Stats(); return st.Running == 2 && st.Waiting == 1 })
	wg.Wait()
	if t.Failed() {
		return
	}
	third := results[2].ttft()
	for i := range 2 {
		if first := results[i].ttft(); third <= first {
			t.Errorf("third request's TTFT %s is not above request %d's %s", third, i, first)
		}
	}
	if st := ts.Stats(); st.Completed != 3 || st.Running != 0 || st.Waiting != 0 || st.KVUsage != 0 {
		t.Errorf("stats after = %+v", st)
	}
}

func TestDecodeSlowsWithBatchSize(t *testing.T) {
	t.Parallel()
	// One sequence: 4+4 = 8 ms a token; four: 4+16 = 20 ms (2.5×).
	ts := start(t, func(o *Options) {
		o.Profile.DecodeStepBase, o.Profile.DecodeStepPerSeq = 4*time.Millisecond, 4*time.Millisecond
	}, true)
	lone, _ := timed(t, ts.URL, 4, 40)
	var mu sync.Mutex
	var batched []time.Duration
	var wg sync.WaitGroup
	for range ts.prof.MaxRunning {
		wg.Go(func() {
			d, _ := timed(t, ts.URL, 4, 40)
			mu.Lock()
			batched = append(batched, d)
			mu.Unlock()
		})
	}
	wg.Wait()
	fastest := batched[0]
	for _, d := range batched {
		fastest = min(fastest, d)
	}
	if ratio := float64(fastest) / float64(lone); ratio < 1.6 {
		t.Errorf("a request among %d took %s, alone %s: ratio %.2f, want about 2.5 (at least 1.6)",
			ts.prof.MaxRunning, fastest, lone, ratio)
	}
}

func TestPreemptionKeepsTokenCounts(t *testing.T) {
	t.Parallel()
	// 4 requests of 8 prompt + 40 output tokens need 192 tokens of a
	// 64-token cache: the batch must preempt.
	ts := start(t, func(o *Options) { o.Profile.KVCacheTokens = 64 }, true)
	var wg sync.WaitGroup
	var peak float64
	for i := range 4 {
		wg.Go(func() {
			if i%2 == 0 {
				if _, n := timed(t, ts.URL, 8, 40); n != 40 {
					t.Errorf("request %d got %d tokens, want 40", i, n)
				}
				return
			}
			res, err := stream(context.Background(), ts.URL+"/v1/completions",
				map[string]any{"prompt": promptOf(8), "max_tokens": 40, "stream": true})
			if err != nil {
				t.Errorf("stream %d: %v", i, err)
				return
			}
			if n := streamedTokens(t, res); n != 40 {
				t.Errorf("stream %d got %d tokens, want 40", i, n)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for loop := true; loop; {
		select {
		case <-done:
			loop = false
		case <-time.After(time.Millisecond):
			peak = max(peak, ts.Stats().KVUsage)
		}
	}
	st := ts.Stats()
	if st.Preempted == 0 || st.Completed != 4 || st.GeneratedTokens != 160 || st.KVUsage != 0 || st.Running != 0 {
		t.Errorf("stats = %+v, want preemptions, 4 completed, 160 tokens, empty cache", st)
	}
	if peak < 0.5 || peak > 1 {
		t.Errorf("peak KV usage %.2f, want it to fill (0.5..1)", peak)
	}
}

// streamedTokens counts the tokens of a completion stream's text chunks.
func streamedTokens(t *testing.T, res streamResult) int {
	n := 0
	for _, ev := range res.events {
		if ev.data == "[DONE]" {
			break
		}
		if c := decode(t, ev.data); len(c.Choices) == 1 && c.Choices[0].Text != nil {
			n += len(strings.Fields(*c.Choices[0].Text))
		}
	}
	return n
}

func TestSlowdown(t *testing.T) {
	t.Parallel()
	ts := start(t, nil, true)
	nominal, _ := timed(t, ts.URL, 4, 40)
	for _, f := range []float64{0.2, -1, math.NaN(), math.Inf(1)} {
		ts.SetSlowdown(f)
		if got := math.Float64frombits(ts.slowdown.Load()); got != 1 {
			t.Errorf("SetSlowdown(%v) set %v, want it clamped to 1", f, got)
		}
	}
	ts.SetSlowdown(3)
	slow, _ := timed(t, ts.URL, 4, 40)
	if ratio := float64(slow) / float64(nominal); ratio < 2 {
		t.Errorf("slowdown 3 took %s, nominal %s: ratio %.2f, want about 3 (at least 2)", slow, nominal, ratio)
	}
}

func TestClientDisconnectFreesSlot(t *testing.T) {
	t.Parallel()
	// One slot; the first request would hold it for 4000 × 6 ms = 24 s.
	ts := start(t, func(o *Options) { o.Profile.MaxRunning = 1 }, true)
	for _, streaming := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", streaming), func(t *testing.T) {
			before := ts.Stats()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hog := make(chan struct{})
			go func() {
				defer close(hog)
				_, _, _ = call(ctx, http.MethodPost, ts.URL+"/v1/completions",
					map[string]any{"prompt": "x", "max_tokens": 4000, "stream": streaming})
			}()
			waitFor(t, "the hog to run", func() bool { return ts.Stats().Running == 1 })
			next := make(chan int)
			go func() { _, n := timed(t, ts.URL, 4, 5); next <- n }()
			waitFor(t, "the next to wait", func() bool { return ts.Stats().Waiting == 1 })
			cancel()
			<-hog
			select {
			case n := <-next:
				if n != 5 {
					t.Errorf("next got %d tokens", n)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the waiting request did not get the freed slot")
			}
			st := ts.Stats()
			if st.Failed != before.Failed+1 || st.Completed != before.Completed+1 || st.KVUsage != 0 {
				t.Errorf("stats = %+v (before %+v)", st, before)
			}
		})
	}
}

func TestRunStopFailsInFlight(t *testing.T) {
	t.Parallel()
	ts := start(t, func(o *Options) { o.Profile.MaxRunning = 2 }, true)
	long := func(stream bool) map[string]any {
		return map[string]any{"prompt": "x", "max_tokens": 4000, "stream": stream}
	}
	type result struct {
		resp *http.Response
		data []byte
		err  error
	}
	whole := make(chan result, 2)
	for range 2 {
		go func() {
			resp, data, err := call(context.Background(), http.MethodPost, ts.URL+"/v1/completions", long(false))
			whole <- result{resp, data, err}
		}()
	}
	waitFor(t, "two running", func() bool { return ts.Stats().Running == 2 })
	streamed := make(chan streamResult, 1)
	go func() {
		res, err := stream(context.Background(), ts.URL+"/v1/completions", long(true))
		if err != nil {
			t.Errorf("stream: %v", err)
		}
		streamed <- res
	}()
	waitFor(t, "two running, one waiting", func() bool { st := ts.Stats(); return st.Running == 2 && st.Waiting == 1 })
	ts.stop()
	if err := <-ts.ran; err != nil {
		t.Errorf("Run returned %v, want nil", err)
	}
	ts.ran <- nil // for cleanup
	for range 2 {
		r := <-whole
		if r.err != nil {
			t.Fatal(r.err)
		}
		checkError(t, r.resp, r.data, http.StatusServiceUnavailable, "server_stopping")
	}
	res := <-streamed
	n := len(res.events)
	if n < 2 || res.events[n-1].data != "[DONE]" {
		t.Fatalf("stream = %q", res.raw)
	}
	if e := decode(t, res.events[n-2].data); e.Error == nil || e.Error.Code != "server_stopping" {
		t.Errorf("stream's last event = %s, want an error", res.events[n-2].data)
	}
	if st := ts.Stats(); st.Failed != 3 || st.Running != 0 || st.Waiting != 0 {
		t.Errorf("stats = %+v", st)
	}
	resp, data := post(t, ts.URL+"/v1/completions", `{"prompt": "x"}`)
	checkError(t, resp, data, http.StatusServiceUnavailable, "server_stopping")
	if resp, _, err := call(context.Background(), http.MethodGet, ts.URL+"/health", nil); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("health after stop: %v %v", resp, err)
	}
	if err := ts.Run(context.Background()); !errors.Is(err, ErrAlreadyRun) {
		t.Errorf("second Run = %v, want ErrAlreadyRun", err)
	}
}

func TestGPULoad(t *testing.T) {
	t.Parallel()
	gpu := &fakeGPU{}
	ts := start(t, func(o *Options) { o.GPU, o.LoadWindow = gpu, 100*time.Millisecond }, true)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { timed(t, ts.URL, 4, 30) })
	}
	wg.Wait()
	peak := 0.0
	for _, l := range gpu.snapshot() {
		if l < 0 || l > 1 {
			t.Fatalf("load %v outside 0..1", l)
		}
		peak = max(peak, l)
	}
	if peak <= 0.3 {
		t.Errorf("peak load %.2f under a full batch, want above 0.3", peak)
	}
	waitFor(t, "the load to decay to 0", func() bool {
		l := gpu.snapshot()
		return l[len(l)-1] == 0 && ts.Stats().Busy == 0
	})
	// Idle at zero, the scheduler blocks: no more calls.
	n := len(gpu.snapshot())
	time.Sleep(200 * time.Millisecond)
	if m := len(gpu.snapshot()); m != n {
		t.Errorf("an idle server set the load %d more times", m-n)
	}
}

// TestIdleGapIsNotCaughtUp: a request reaching a server that went idle
// moments ago gets a full iteration, not one backdated to where the last
// iteration ended (catching up is only for late timers while busy).
func TestIdleGapIsNotCaughtUp(t *testing.T) {
	t.Parallel()
	ts := start(t, func(o *Options) {
		o.Profile.DecodeStepBase, o.Profile.DecodeStepPerSeq = 30*time.Millisecond, 0
	}, true)
	for _, gap := range []time.Duration{0, 5 * time.Millisecond, 15 * time.Millisecond, 25 * time.Millisecond} {
		timed(t, ts.URL, 4, 1)
		time.Sleep(gap)
		// One token: a single prefill iteration of at least 30 ms. Timers
		// never fire early, so this lower bound holds on a loaded machine.
		if took, _ := timed(t, ts.URL, 4, 1); took < 30*time.Millisecond {
			t.Errorf("after an idle gap of %s a one-token request took %s, less than one 30 ms iteration", gap, took)
		}
	}
}
