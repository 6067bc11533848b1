//go:build cgo

package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

// TestSimBackendSamplesSimulatedGPUs: --gpu-backend=sim gives the agent's
// nvml collector the simulator's GPUs, of the asked profile and process
// count.
func TestSimBackendSamplesSimulatedGPUs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	b := defaultGPUBackend()
	b.Backend, b.Profile, b.Processes = backendSim, "dgxa100", 3
	o := agent.DefaultOptions()
	if err := b.apply(ctx, &o, testutil.Logger()); err != nil {
		t.Fatal(err)
	}
	// Sample the nvml collector of the resulting table alone.
	i := 0
	for o.Collectors[i].Name != nvml.Name {
		i++
	}
	table := o.Collectors[i : i+1]
	r := collector.NewRunner(table.Build(table.DefaultEnabled(), collector.Env{Ctx: ctx, Logger: testutil.Logger(), Node: "n"}), 5*time.Second, testutil.Logger())
	t.Cleanup(func() { _ = r.Close() })
	snap := &snapshot.Snapshot{}
	if st := r.Collect(ctx, snap); !st[0].Success {
		t.Fatalf("nvml: %s", st[0].Err)
	}
	if len(snap.GPUs) != 8 || !strings.Contains(snap.GPUs[0].Name, "A100") || len(snap.GPUs[0].Processes) != 3 {
		t.Fatalf("simulated backend: %d GPUs, first %+v", len(snap.GPUs), snap.GPUs[0])
	}
}
