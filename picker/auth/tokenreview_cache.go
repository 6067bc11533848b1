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

// reviewCache holds review results by token hash, least recently used
// evicted first beyond max, and the reviews in flight.
type reviewCache struct {
	mu       sync.Mutex
	max      int
	lru      *list.List // of *cacheEntry, most recently used in front
	items    map[tokenHash]*list.Element
	inflight map[tokenHash]*flight
}

func newReviewCache(max int) *reviewCache {
	return &reviewCache{
		max:      max,
		lru:      list.New(),
		items:    map[tokenHash]*list.Element{},
		inflight: map[tokenHash]*flight{},
	}
}

// getLocked returns the live entry for key, dropping an expired one.
func (c *reviewCache) getLocked(key tokenHash, now time.Time) (result, bool) {
	el, ok := c.items[key]
	if !ok {
		return result{}, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.until) {
		c.lru.Remove(el)
		delete(c.items, key)
		return result{}, false
	}
	c.lru.MoveToFront(el)
	return e.res, true
}

// put stores res for key until the given time.
func (c *reviewCache) put(key tokenHash, res result, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.res, e.until = res, until
		c.lru.MoveToFront(el)
		return
	}
	c.items[key] = c.lru.PushFront(&cacheEntry{key: key, res: res, until: until})
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

// len returns the number of cached results.
func (c *reviewCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// do returns the cached result for key, or joins the review of key in
// flight, or starts one with run. run executes in its own goroutine so that
// a caller that gives up (ctx done) does not cancel it for the others; it
// must store its result before returning, so that a caller arriving after
// the flight ends finds it cached.
func (c *reviewCache) do(ctx context.Context, key tokenHash, now func() time.Time, run func() result) (Identity, error) {
	c.mu.Lock()
	if res, ok := c.getLocked(key, now()); ok {
		c.mu.Unlock()
		return res.id, res.err
	}
	f, ok := c.inflight[key]
	if !ok {
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
