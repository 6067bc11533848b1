// Package testutil holds what the tests across the repository would
// otherwise each copy: waiting for a condition to hold, and
// a logger that discards everything. It is for tests only.
package testutil

import (
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// pollEvery is how often Eventually looks again.
const pollEvery = 5 * time.Millisecond

// Eventually checks cond every few milliseconds until it holds, and fails
// the test, naming what it waited for, once limit has passed. The limit
// guards a hang, not a speed: give the slowest honest case on a loaded
// machine room.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	Until(t, limit, pollEvery, func() error {
		if !cond() {
			return errors.New("waiting for " + what)
		}
		return nil
	})
}

// Until is Eventually for a check that says what is still wrong and may be
// costly (a scrape): it calls check every interval until it returns nil,
// and fails the test with its last error once limit has passed.
func Until(t testing.TB, limit, every time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %v", limit, err)
		}
		time.Sleep(every)
	}
}

// Logger returns a logger that discards everything.
func Logger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Clock is a settable clock for code that takes a now func; it is safe
// for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
