package collector

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

// fakeSource is a source whose behaviour each test sets.
type fakeSource func(ctx context.Context) (Reading, error)

func (f fakeSource) Collect(ctx context.Context) (Reading, error) { return f(ctx) }

// owning is an entry that owns the GPUs section.
func owning(name string) Entry {
	return Entry{Name: name, Owns: []snapshot.Section{snapshot.SectionGPUs}}
}

// enriching is an entry with an enrich step that writes the profiling
// section.
func enriching(name string) Entry {
	return Entry{Name: name, Reads: []snapshot.Section{snapshot.SectionGPUs}, Writes: []snapshot.Section{snapshot.SectionProfiling}}
}

func okSource(node string) Source {
	return fakeSource(func(context.Context) (Reading, error) {
		return Reading{Own: func(s *snapshot.Snapshot) { s.Node = node }}, nil
	})
}

func TestRunnerIsolatesFailures(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	sources := []Enabled{
		{Entry: owning("good"), Source: okSource("filled")},
		{Entry: owning("failing"), Source: fakeSource(func(context.Context) (Reading, error) {
			return Reading{Own: func(s *snapshot.Snapshot) { s.Node = "must not apply" }}, errors.New("boom")
		})},
		{Entry: owning("hanging"), Source: fakeSource(func(context.Context) (Reading, error) {
			<-release // ignores its context on purpose
			return Reading{}, nil
		})},
		{Entry: owning("panicking"), Source: fakeSource(func(context.Context) (Reading, error) {
			panic("bad source")
		})},
		{Entry: owning("panicking-part"), Source: fakeSource(func(context.Context) (Reading, error) {
			return Reading{Own: func(*snapshot.Snapshot) { panic("bad part") }}, nil
		})},
		{Entry: Entry{Name: "undeclared"}, Source: okSource("undeclared part")},
		{Entry: owning("broken-factory"), InitErr: errors.New("no socket")},
	}
	r := NewRunner(sources, 50*time.Millisecond, testutil.Logger())
	var snap snapshot.Snapshot
	st := r.Collect(context.Background(), &snap)
	want := []struct {
		name    string
		success bool
		errPart string
	}{
		{"good", true, ""},
		{"failing", false, "boom"},
		{"hanging", false, "deadline"},
		{"panicking", false, "panic: bad source"},
		{"panicking-part", false, "panic: bad part"},
		{"undeclared", false, "does not declare"},
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
		})
	}
	if snap.Node != "filled" {
		t.Errorf("node %q: the good source's part is not the one applied", snap.Node)
	}
}

// TestEnrichStepsRunAfterEveryRead checks the two phases: every step sees
// every source's own part, whatever the table order, and the steps run in
// table order, each seeing the parts of those before it.
func TestEnrichStepsRunAfterEveryRead(t *testing.T) {
	t.Parallel()
	var seen []string
	step := func(name string) Source {
		return fakeSource(func(context.Context) (Reading, error) {
			return Reading{Enrich: func(_ context.Context, s *snapshot.Snapshot) (snapshot.Part, error) {
				seen = append(seen, name+" saw "+s.Node+","+s.System.DriverVersion)
				return func(s *snapshot.Snapshot) { s.System.DriverVersion += name }, nil
			}}, nil
		})
	}
	sources := []Enabled{
		{Entry: enriching("first"), Source: step("first")},
		{Entry: owning("node"), Source: okSource("n")},
		{Entry: enriching("second"), Source: step("second")},
	}
	var snap snapshot.Snapshot
	st := NewRunner(sources, time.Second, testutil.Logger()).Collect(context.Background(), &snap)
	for _, s := range st {
		if !s.Success {
			t.Fatalf("%s failed: %s", s.Name, s.Err)
		}
	}
	if want := []string{"first saw n,", "second saw n,first"}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("steps saw %q, want %q", seen, want)
	}
	if snap.System.DriverVersion != "firstsecond" {
		t.Errorf("parts applied: %q, want both in table order", snap.System.DriverVersion)
	}
}

// TestFailingEnrichLeavesTheSnapshot checks that a step that fails, panics
// or hangs marks only its own source failed and changes nothing, and that
// the steps after it still run.
func TestFailingEnrichLeavesTheSnapshot(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // after the parallel subtests
	steps := map[string]Enrich{
		"erring": func(context.Context, *snapshot.Snapshot) (snapshot.Part, error) {
			return func(s *snapshot.Snapshot) { s.Node = "erring" }, errors.New("join failed")
		},
		"panicking": func(context.Context, *snapshot.Snapshot) (snapshot.Part, error) { panic("bad join") },
		"hanging": func(context.Context, *snapshot.Snapshot) (snapshot.Part, error) {
			<-release // ignores its context on purpose
			return func(s *snapshot.Snapshot) { s.Node = "hanging" }, nil
		},
		"panicking-part": func(context.Context, *snapshot.Snapshot) (snapshot.Part, error) {
			return func(*snapshot.Snapshot) { panic("bad part") }, nil
		},
	}
	for name, step := range steps {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sources := []Enabled{
				{Entry: owning("gpus"), Source: okSource("n")},
				{Entry: Entry{Name: name, Owns: []snapshot.Section{snapshot.SectionZtunnel}, Reads: []snapshot.Section{snapshot.SectionGPUs}, Writes: []snapshot.Section{snapshot.SectionProfiling}},
					Source: fakeSource(func(context.Context) (Reading, error) {
						return Reading{Own: func(s *snapshot.Snapshot) { s.Mesh = &snapshot.Mesh{} }, Enrich: step}, nil
					})},
				{Entry: enriching("after"), Source: fakeSource(func(context.Context) (Reading, error) {
					return Reading{Enrich: func(context.Context, *snapshot.Snapshot) (snapshot.Part, error) {
						return func(s *snapshot.Snapshot) { s.System.DriverVersion = "after ran" }, nil
					}}, nil
				})},
			}
			var snap snapshot.Snapshot
			st := NewRunner(sources, 50*time.Millisecond, testutil.Logger()).Collect(context.Background(), &snap)
			if st[1].Success || !strings.HasPrefix(st[1].Err, "enrich: ") {
				t.Errorf("%s: status %+v, want failed in its enrich step", name, st[1])
			}
			if !st[0].Success || !st[2].Success {
				t.Errorf("other sources failed: %+v", st)
			}
			if snap.Node != "n" || snap.Mesh == nil || snap.System.DriverVersion != "after ran" {
				t.Errorf("snapshot %+v: want the other parts, the failing source's own part, and the later step's", snap)
			}
		})
	}
}

func TestRunnerDoesNotPileUpOnHungSource(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	release := make(chan struct{})
	hung := fakeSource(func(context.Context) (Reading, error) {
		calls.Add(1)
		<-release
		return Reading{}, nil
	})
	r := NewRunner([]Enabled{{Entry: Entry{Name: "hung"}, Source: hung}}, 20*time.Millisecond, testutil.Logger())
	for range 3 {
		if st := r.Collect(context.Background(), &snapshot.Snapshot{}); st[0].Success {
			t.Fatal("hung source reported success")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("hung source called %d times, want 1 while the first call runs", n)
	}
	st := r.Collect(context.Background(), &snapshot.Snapshot{})
	if !strings.Contains(st[0].Err, ErrStillRunning.Error()) {
		t.Errorf("err = %q, want %q", st[0].Err, ErrStillRunning)
	}
	close(release)
	testutil.Eventually(t, 5*time.Second, "the source to succeed once its call returned", func() bool {
		return r.Collect(context.Background(), &snapshot.Snapshot{})[0].Success
	})
}

// TestHungEnrichHoldsItsSource checks that a source whose enrich step hangs
// is not read again until the step returns.
func TestHungEnrichHoldsItsSource(t *testing.T) {
	t.Parallel()
	var reads atomic.Int32
	release := make(chan struct{})
	src := fakeSource(func(context.Context) (Reading, error) {
		reads.Add(1)
		return Reading{Enrich: func(context.Context, *snapshot.Snapshot) (snapshot.Part, error) {
			<-release
			return nil, nil
		}}, nil
	})
	r := NewRunner([]Enabled{{Entry: enriching("join"), Source: src}}, 20*time.Millisecond, testutil.Logger())
	for range 3 {
		r.Collect(context.Background(), &snapshot.Snapshot{})
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("read %d times while its first enrich step hung, want 1", n)
	}
	close(release)
	testutil.Eventually(t, 5*time.Second, "the source to succeed once its step returned", func() bool {
		return r.Collect(context.Background(), &snapshot.Snapshot{})[0].Success
	})
}

func TestRunnerCancelsAbandonedSource(t *testing.T) {
	t.Parallel()
	cancelled := make(chan struct{})
	src := fakeSource(func(ctx context.Context) (Reading, error) {
		<-ctx.Done()
		close(cancelled)
		return Reading{}, ctx.Err()
	})
	r := NewRunner([]Enabled{{Entry: Entry{Name: "slow"}, Source: src}}, 10*time.Millisecond, testutil.Logger())
	if st := r.Collect(context.Background(), &snapshot.Snapshot{}); st[0].Success {
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
	src := &closeCounter{fakeSource: func(context.Context) (Reading, error) {
		<-release
		return Reading{}, nil
	}}
	r := NewRunner([]Enabled{{Entry: Entry{Name: "slow"}, Source: src}}, 10*time.Millisecond, testutil.Logger())
	r.Collect(context.Background(), &snapshot.Snapshot{}) // abandoned at its deadline, still running
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := src.closed.Load(); n != 1 {
		t.Errorf("closed %d times, want once, after the collect returned", n)
	}
}
