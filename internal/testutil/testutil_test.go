package testutil

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	Eventually(t, 5*time.Second, "the third look", func() bool { return calls.Add(1) >= 3 })
	if n := calls.Load(); n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
}

// failRecorder is a testing.TB that records a failure instead of failing.
type failRecorder struct {
	testing.TB
	failed atomic.Bool
	msg    string
}

func (f *failRecorder) Helper() {}

func (f *failRecorder) Fatalf(format string, args ...any) {
	f.failed.Store(true)
	f.msg = fmt.Sprintf(format, args...)
	panic(f) // Fatalf does not return
}

func TestUntilReportsTheLastError(t *testing.T) {
	t.Parallel()
	rec := &failRecorder{TB: t}
	n := 0
	func() {
		defer func() {
			if v := recover(); v != nil && v != rec {
				panic(v)
			}
		}()
		Until(rec, 30*time.Millisecond, time.Millisecond, func() error { n++; return fmt.Errorf("look %d", n) })
	}()
	if !rec.failed.Load() || !strings.Contains(rec.msg, fmt.Sprintf("look %d", n)) {
		t.Errorf("failed %v with %q, want the last error (look %d)", rec.failed.Load(), rec.msg, n)
	}
}

func TestEventuallyFailsAtTheLimit(t *testing.T) {
	t.Parallel()
	rec := &failRecorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if v := recover(); v != nil && v != rec {
				panic(v)
			}
		}()
		Eventually(rec, 30*time.Millisecond, "nothing", func() bool { return false })
	}()
	if !rec.failed.Load() {
		t.Fatal("a condition that never holds did not fail the test")
	}
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("failed after %s, before its limit", took)
	}
}
