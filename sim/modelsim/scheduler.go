package modelsim

import (
	"context"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// maxCatchUp is how far behind its schedule the loop may fall and still
// catch up: an iteration that starts late by less (a timer that fired a
// little late on a loaded machine) is shortened by as much, so that timer
// slack does not lower throughput; a longer lag (the server was idle)
// starts a new schedule.
const maxCatchUp = 50 * time.Millisecond

type reqState uint8

const (
	stateWaiting reqState = iota
	stateRunning
	stateDone
)

// request is one sequence in the scheduler. The fields above the line are
// fixed at creation; the scheduler fields are guarded by Server.mu; the
// handler reads progress, first and done (and err once done is closed).
type request struct {
	promptTokens, maxTokens int
	arrival                 time.Time
	// blocks are the prompt's block hashes, for the prefix cache.
	blocks []uint64
	// adapter is the LoRA adapter it runs with; "" for the base model.
	adapter string

	state     reqState
	target    int // tokens to prefill this admission: prompt + generated
	prefilled int // of target
	generated int // tokens emitted; survives preemption
	kv        int // KV-cache tokens held
	lastAt    time.Time
	// scheduledAt is when it was first admitted to the batch (vLLM's
	// queue time ends there; its prefill and inference times start).
	scheduledAt time.Time

	progress atomic.Int64  // generated, for the handler
	first    chan struct{} // closed at the first token
	done     chan struct{} // closed when finished or failed
	err      error         // why it failed; set before done is closed
}

func newRequest(prompt, maxTokens int) *request {
	return &request{promptTokens: prompt, maxTokens: maxTokens, arrival: time.Now(),
		first: make(chan struct{}), done: make(chan struct{})}
}

// iteration is the plan of one scheduler iteration.
type iteration struct {
	prefill []chunk
	decode  []*request
	tokens  int // prompt tokens prefilled
	dur     time.Duration
}

type chunk struct {
	r *request
	n int
}

// Run is the scheduler loop; it runs until ctx ends and returns nil then.
// Requests still in flight when it ends fail (streams get an error event,
// others 503), and so does every later request. Run may be called once.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	s.log.Info("model server running", "model", s.model, "profile", s.prof.Name)
	defer s.shutdown()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var it iteration
	var lastEnd time.Time
	for {
		if !s.plan(&it) {
			// Idle: the next iteration starts when its work arrives, not
			// where the last one ended (catching up is for late timers).
			lastEnd = time.Time{}
			if !s.idle(ctx, timer) {
				return nil
			}
			continue
		}
		start := time.Now()
		if behind := start.Sub(lastEnd); behind > 0 && behind < maxCatchUp {
			start = lastEnd
		}
		lastEnd = start.Add(it.dur)
		if !sleepUntil(ctx, timer, lastEnd) {
			return nil
		}
		s.commit(&it)
	}
}

// sleepUntil waits for end or ctx; false when ctx ended.
func sleepUntil(ctx context.Context, timer *time.Timer, end time.Time) bool {
	d := time.Until(end)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer.Reset(d)
	select {
	case <-ctx.Done():
		timer.Stop()
		return false
	case <-timer.C:
		return true
	}
}

// idle waits for work. While the busy average is above zero it wakes ten
// times a window to let it decay (and tell the GPU); at zero it blocks.
func (s *Server) idle(ctx context.Context, timer *time.Timer) bool {
	s.mu.Lock()
	busy := s.busy
	s.mu.Unlock()
	var tick <-chan time.Time
	if busy > 0 {
		timer.Reset(s.loadWindow / 10)
		tick = timer.C
	}
	select {
	case <-ctx.Done():
		timer.Stop()
		return false
	case <-s.wake:
		timer.Stop()
		return true
	case <-tick:
		s.mu.Lock()
		busy = s.updateBusy(time.Now(), 0, 0)
		if busy < 0.01 {
			s.busy, busy = 0, 0
		}
		s.mu.Unlock()
		s.setLoad(busy)
		return true
	}
}

// plan fills it with the next iteration's work; false when there is none.
// Order, as vLLM's: make room in the KV cache for this iteration's tokens
// by preempting, schedule the running requests (decode, or the next chunk
// of a prefill), then admit waiting requests while the batch, the prefill
// budget and the KV cache allow; not in an iteration that preempted.
func (s *Server) plan(it *iteration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(it.prefill)
	clear(it.decode)
	it.prefill, it.decode, it.tokens = it.prefill[:0], it.decode[:0], 0
	preempted := s.makeRoom()
	budget := s.prof.MaxBatchedTokens
	for _, r := range s.running {
		if r.prefilled == r.target {
			it.decode = append(it.decode, r)
			continue
		}
		if n := min(r.target-r.prefilled, budget); n > 0 {
			it.prefill = append(it.prefill, chunk{r, n})
			it.tokens += n
			budget -= n
		}
	}
	for !preempted && budget > 0 && len(s.running) < s.prof.MaxRunning {
		i := s.nextAdmissible()
		if i < 0 {
			break
		}
		r := s.waiting[i]
		need := r.promptTokens + r.generated
		if !s.fits(need) {
			break
		}
		s.waiting = slices.Delete(s.waiting, i, i+1)
		r.state, r.target, r.kv = stateRunning, need, need
		if r.scheduledAt.IsZero() {
			r.scheduledAt = time.Now()
		}
		r.prefilled = s.cached(r)
		s.kvUsed += need
		s.running = append(s.running, r)
		n := min(need-r.prefilled, budget)
		it.prefill = append(it.prefill, chunk{r, n})
		it.tokens += n
		budget -= n
	}
	if len(it.prefill) == 0 && len(it.decode) == 0 {
		return false
	}
	slow := math.Float64frombits(s.slowdown.Load())
	it.dur = time.Duration(float64(s.prof.iterationTime(len(it.decode), it.tokens)) * slow)
	return true
}

// cached is how many of r's prompt tokens its admission finds in the
// prefix cache and need no prefill; the first admission counts them in
// vLLM's prefix-cache metrics.
func (s *Server) cached(r *request) int {
	n := cachedTokens(s.prefix.match(r.blocks), r.promptTokens)
	if r.generated == 0 {
		s.metrics.prefixQueries.Add(float64(r.promptTokens))
		s.metrics.prefixHits.Add(float64(n))
	}
	return n
}

// fits reports whether a request needing need KV tokens can be admitted:
// the cache must keep room for one new token of every running request and
// of this one, plus a watermark of 1% of the cache. A lone request needs
// no watermark (New's checks guarantee it fits).
func (s *Server) fits(need int) bool {
	capacity := s.prof.KVCacheTokens
	if len(s.running) == 0 {
		return need+1 <= capacity
	}
	watermark := max(1, capacity/100)
	return s.kvUsed+len(s.running)+1+need+watermark <= capacity
}

// makeRoom preempts the most recently admitted requests until the cache
// has room for one new token of every running request. A preempted request
// frees its KV cache and goes back to the head of the queue; readmitted, it
// prefills its prompt and the tokens it had generated (recompute).
func (s *Server) makeRoom() bool {
	preempted := false
	for len(s.running) > 1 && s.kvUsed+len(s.running) > s.prof.KVCacheTokens {
		r := s.running[len(s.running)-1]
		s.running[len(s.running)-1] = nil
		s.running = s.running[:len(s.running)-1]
		s.kvUsed -= r.kv
		r.state, r.kv, r.prefilled, r.target = stateWaiting, 0, 0, 0
		s.waiting = slices.Insert(s.waiting, 0, r)
		s.counts.preempted++
		s.metrics.preemptions.Inc()
		preempted = true
	}
	return preempted
}

// commit ends an iteration: prefill chunks advance, every request whose
// prefill completed and every decoding one gets a token. Requests that
// ended meanwhile (client gone) are skipped.
func (s *Server) commit(it *iteration) {
	now := time.Now()
	s.mu.Lock()
	for _, c := range it.prefill {
		if c.r.state != stateRunning {
			continue
		}
		c.r.prefilled += c.n
		if c.r.prefilled == c.r.target {
			s.emit(c.r, now)
		}
	}
	for _, r := range it.decode {
		if r.state == stateRunning {
			s.emit(r, now)
		}
	}
	u := 0.3 + 0.7*float64(len(it.decode))/float64(s.prof.MaxRunning)
	busy := s.updateBusy(now, it.dur, u)
	s.mu.Unlock()
	s.setLoad(busy)
}

// emit gives r its next token at now.
func (s *Server) emit(r *request, now time.Time) {
	r.generated++
	r.kv++
	s.kvUsed++
	s.counts.generated++
	s.metrics.generation.Inc()
	if r.generated == 1 {
		s.prefix.add(r.blocks)
		s.counts.prompt += uint64(r.promptTokens)
		s.metrics.prompt.Add(float64(r.promptTokens))
		s.metrics.ttft.Observe(now.Sub(r.arrival).Seconds())
		s.metrics.queue.Observe(r.scheduledAt.Sub(r.arrival).Seconds())
		s.metrics.prefill.Observe(now.Sub(r.scheduledAt).Seconds())
		close(r.first)
	} else {
		gap := now.Sub(r.lastAt).Seconds()
		s.metrics.itl.Observe(gap)
		s.metrics.tpot.Observe(gap)
	}
	r.lastAt = now
	r.progress.Store(int64(r.generated))
	if r.generated == r.maxTokens {
		s.remove(r)
		s.counts.completed++
		s.metrics.success.Inc()
		s.metrics.e2e.Observe(now.Sub(r.arrival).Seconds())
		s.metrics.inference.Observe(now.Sub(r.scheduledAt).Seconds())
		s.metrics.promptLen.Observe(float64(r.promptTokens))
		close(r.done)
	}
}

// remove takes r out of the queue or the batch, frees its KV cache and
// marks it done (its done channel is the caller's to close).
func (s *Server) remove(r *request) {
	switch r.state {
	case stateWaiting:
		if i := slices.Index(s.waiting, r); i >= 0 {
			s.waiting = slices.Delete(s.waiting, i, i+1)
		}
	case stateRunning:
		if i := slices.Index(s.running, r); i >= 0 {
			s.running = slices.Delete(s.running, i, i+1)
		}
	}
	s.kvUsed -= r.kv
	r.kv = 0
	r.state = stateDone
}

// enqueue puts a new request at the tail of the queue.
func (s *Server) enqueue(r *request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return ErrStopped
	case len(s.waiting) >= s.maxWaiting:
		return ErrQueueFull
	}
	s.waiting = append(s.waiting, r)
	s.signal()
	return nil
}

// abort ends a request whose client went away, freeing its slot and KV
// cache at once; a no-op for one already done.
func (s *Server) abort(r *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.state == stateDone {
		return
	}
	s.fail(r, errCancelled)
	s.signal()
}

// fail ends r with err.
func (s *Server) fail(r *request, err error) {
	s.remove(r)
	s.counts.failed++
	r.err = err
	close(r.done)
}

// shutdown fails every request in flight and refuses new ones.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.stopped = true
	inFlight := len(s.running) + len(s.waiting)
	for _, r := range slices.Concat(s.running, s.waiting) {
		s.fail(r, ErrStopped)
	}
	s.busy = 0
	s.mu.Unlock()
	s.setLoad(0)
	s.log.Info("model server stopped", "failed_in_flight", inFlight)
}

// updateBusy folds the time since the last update into the busy average:
// work of it was spent in an iteration whose load was u. Callers hold mu.
func (s *Server) updateBusy(now time.Time, work time.Duration, u float64) float64 {
	elapsed := now.Sub(s.busyAt)
	s.busyAt = now
	if elapsed <= 0 {
		return s.busy
	}
	keep := math.Exp(-elapsed.Seconds() / s.loadWindow.Seconds())
	frac := math.Min(1, work.Seconds()/elapsed.Seconds())
	s.busy = s.busy*keep + (1-keep)*u*frac
	return s.busy
}

func (s *Server) setLoad(busy float64) {
	if s.gpu != nil {
		s.gpu.SetLoad(busy)
	}
}
