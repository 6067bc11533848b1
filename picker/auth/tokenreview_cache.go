package auth

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// result is the outcome of one TokenReview.
type result struct {
	id  Identity
	err error
}

type cacheEntry struct {
	key   tokenHash
	res   result
	until time.Time
}

// flight is a review in progress that callers with the same token share.
type flight struct {
	done    chan struct{}
	res     result
	waiters int // callers joined, the first included (read by tests)
}

// lru holds results by token hash, least recently used evicted first
// beyond max. Its owner locks it.
type lru struct {
	max   int
	order *list.List // of *cacheEntry, most recently used in front
	items map[tokenHash]*list.Element
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), items: map[tokenHash]*list.Element{}}
}

// get returns the live entry for key, dropping an expired one.
func (l *lru) get(key tokenHash, now time.Time) (result, bool) {
	el, ok := l.items[key]
	if !ok {
		return result{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		l.order.Remove(el)
		delete(l.items, key)
		return result{}, false
	}
	l.order.MoveToFront(el)
	return e.res, true
}

func (l *lru) put(key tokenHash, res result, until time.Time) {
	if el, ok := l.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.res, e.until = res, until
		l.order.MoveToFront(el)
		return
	}
	l.items[key] = l.order.PushFront(&cacheEntry{key: key, res: res, until: until})
	for l.order.Len() > l.max {
		old := l.order.Back()
		l.order.Remove(old)
		delete(l.items, old.Value.(*cacheEntry).key)
	}
}

func (l *lru) remove(key tokenHash) {
	if el, ok := l.items[key]; ok {
		l.order.Remove(el)
		delete(l.items, key)
	}
}

// reviewCache holds review results by token hash, and the reviews in
// flight. Accepted tokens and rejected ones live in separate LRUs: a
// flood of made-up tokens churns only the rejections and cannot evict a
// real agent's accepted token (which would cost it a review, and the API
// server one more, on every reconnection).
type reviewCache struct {
	mu       sync.Mutex
	accepted *lru
	rejected *lru
	inflight map[tokenHash]*flight
}

func newReviewCache(accepted, rejected int) *reviewCache {
	return &reviewCache{accepted: newLRU(accepted), rejected: newLRU(rejected), inflight: map[tokenHash]*flight{}}
}

func (c *reviewCache) getLocked(key tokenHash, now time.Time) (result, bool) {
	if res, ok := c.accepted.get(key, now); ok {
		return res, true
	}
	return c.rejected.get(key, now)
}

// put stores res for key until the given time: in the rejections' LRU
// when it is an error, else in the acceptances'.
func (c *reviewCache) put(key tokenHash, res result, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if res.err != nil {
		c.accepted.remove(key)
		c.rejected.put(key, res, until)
		return
	}
	c.rejected.remove(key)
	c.accepted.put(key, res, until)
}

// len returns the number of cached results, accepted and rejected.
func (c *reviewCache) len() (accepted, rejected int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted.order.Len(), c.rejected.order.Len()
}

// do returns the cached result for key, or joins the review of key in
// flight, or starts one with run once admit allows it (a refusal is
// returned as is, not cached). run executes in its own goroutine so that
// a caller that gives up (ctx done) does not cancel it for the others; it
// must store its result before returning, so that a caller arriving after
// the flight ends finds it cached.
func (c *reviewCache) do(ctx context.Context, key tokenHash, now func() time.Time, admit func() error, run func() result) (Identity, error) {
	c.mu.Lock()
	if res, ok := c.getLocked(key, now()); ok {
		c.mu.Unlock()
		return res.id, res.err
	}
	f, ok := c.inflight[key]
	if !ok {
		if err := admit(); err != nil {
			c.mu.Unlock()
			return Identity{}, err
		}
		f = &flight{done: make(chan struct{})}
		c.inflight[key] = f
		go func() {
			f.res = run()
			c.mu.Lock()
			delete(c.inflight, key)
			c.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiters++
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.res.id, f.res.err
	case <-ctx.Done():
		return Identity{}, fmt.Errorf("waiting for token review: %w: %w", ErrUnavailable, ctx.Err())
	}
}
