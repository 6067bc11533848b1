package collector

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/snapshot"
)

// fakeSource is a source whose behaviour each test sets.
type fakeSource func(ctx context.Context) (snapshot.Part, error)

func (f fakeSource) Collect(ctx context.Context) (snapshot.Part, error) { return f(ctx) }

func okSource(node string) Source {
	return fakeSource(func(context.Context) (snapshot.Part, error) {
		return func(s *snapshot.Snapshot) { s.Node = node }, nil
	})
}

func TestRunnerIsolatesFailures(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	sources := []Enabled{
		{Name: "good", Source: okSource("filled")},
		{Name: "failing", Source: fakeSource(func(context.Context) (snapshot.Part, error) {
			return func(s *snapshot.Snapshot) { s.Node = "must not apply" }, errors.New("boom")
		})},
		{Name: "hanging", Source: fakeSource(func(context.Context) (snapshot.Part, error) {
			<-release // ignores its context on purpose
			return nil, nil
		})},
		{Name: "panicking", Source: fakeSource(func(context.Context) (snapshot.Part, error) {
			panic("bad source")
		})},
		{Name: "broken-factory", InitErr: errors.New("no socket")},
	}
	r := NewRunner(sources, 50*time.Millisecond, slog.New(slog.DiscardHandler))
	start := time.Now()
	parts, st := r.Collect(context.Background())
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Collect waited %s for a hanging source", took)
	}
	want := []struct {
		name    string
		success bool
		errPart string
	}{
		{"good", true, ""},
		{"failing", false, "boom"},
		{"hanging", false, "deadline"},
		{"panicking", false, "panic: bad source"},
		{"broken-factory", false, "no socket"},
	}
	for i, w := range want {
		t.Run(w.name, func(t *testing.T) {
			if st[i].Name != w.name || st[i].Success != w.success {
				t.Fatalf("status = %+v, want name %s success %v", st[i], w.name, w.success)
			}
			if !w.success && !strings.Contains(st[i].Err, w.errPart) {
				t.Errorf("err = %q, want it to mention %q", st[i].Err, w.errPart)
			}
			if (parts[i] != nil) != w.success {
				t.Errorf("part present = %v, want %v", parts[i] != nil, w.success)
			}
		})
	}
	var snap snapshot.Snapshot
	for _, p := range parts {
		if p != nil {
			p(&snap)
		}
	}
	if snap.Node != "filled" {
		t.Errorf("good source's part not applied: node %q", snap.Node)
	}
}

func TestRunnerDoesNotPileUpOnHungSource(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	hung := fakeSource(func(context.Context) (snapshot.Part, error) {
		calls.Add(1)
		<-release
		return func(*snapshot.Snapshot) {}, nil
	})
	r := NewRunner([]Enabled{{Name: "hung", Source: hung}}, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	for range 3 {
		_, st := r.Collect(context.Background())
		if st[0].Success {
			t.Fatal("hung source reported success")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("hung source called %d times, want 1 while the first call runs", n)
	}
	_, st := r.Collect(context.Background())
	if !strings.Contains(st[0].Err, ErrStillRunning.Error()) {
		t.Errorf("err = %q, want %q", st[0].Err, ErrStillRunning)
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, st = r.Collect(context.Background())
		if st[0].Success || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !st[0].Success {
		t.Fatalf("source still failing after it returned: %q", st[0].Err)
	}
}

func TestRunnerCancelsAbandonedSource(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	src := fakeSource(func(ctx context.Context) (snapshot.Part, error) {
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	r := NewRunner([]Enabled{{Name: "slow", Source: src}}, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	_, st := r.Collect(context.Background())
	if st[0].Success {
		t.Fatal("slow source reported success")
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("source's context was not cancelled")
	}
}

// closeCounter is a source that counts Close calls.
type closeCounter struct {
	fakeSource
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

func TestCloseWaitsForAbandonedCollect(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	src := &closeCounter{fakeSource: func(context.Context) (snapshot.Part, error) {
		<-release
		return nil, nil
	}}
	r := NewRunner([]Enabled{{Name: "slow", Source: src}}, 10*time.Millisecond, slog.New(slog.DiscardHandler))
	r.Collect(context.Background()) // abandoned at its deadline, still running
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := src.closed.Load(); n != 1 {
		t.Errorf("closed %d times, want once, after the collect returned", n)
	}
}
