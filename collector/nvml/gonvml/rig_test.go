//go:build cgo

package gonvml_test

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/agent/exporter"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/snapshot"
)

var update = flag.Bool("update", false, "rewrite golden files")

// clock is a manual clock shared by the simulator and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rig is a simulated server read by the real source through the adapter.
type rig struct {
	sim   *gpusim.Server
	src   *nvml.Source
	clock *clock
	logs  *lockedWriter
}

func newRig(t *testing.T, profile string) *rig {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	sim, err := gpusim.New(gpusim.Options{Profile: profile, Seed: 7, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedWriter{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithCancel(context.Background())
	src := nvml.New(ctx, gonvml.FromInterface(sim), logger)
	t.Cleanup(func() {
		cancel()
		if err := src.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &rig{sim: sim, src: src, clock: clk, logs: logs}
}

// lockedWriter collects log lines written by several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  strings.Builder
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sample collects once into a fresh snapshot of node "node-a".
func (r *rig) sample(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	rd, err := r.src.Collect(context.Background())
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	s := &snapshot.Snapshot{Node: "node-a", Time: r.clock.Now()}
	rd.Own(s)
	return s
}

// golden compares the exposition of the named metrics with
// testdata/<name>.prom (rewritten with -update).
func golden(t *testing.T, s *snapshot.Snapshot, name string, metrics ...string) {
	t.Helper()
	e := exporter.New(func() *snapshot.Snapshot { return s })
	path := filepath.Join("testdata", name+".prom")
	if *update {
		if err := os.WriteFile(path, []byte(expose(t, e, metrics)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("golden file: %v (run go test -update to create it)", err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(e, f, metrics...); err != nil {
		t.Error(err)
	}
}
