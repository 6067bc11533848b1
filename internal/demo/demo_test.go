//go:build cgo

package demo

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestDemoRunsItsScript runs a compressed demo and checks that the view
// shows what the agent saw: eight GPUs, the injected Xid and the lost GPU.
func TestDemoRunsItsScript(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Duration = 3 * time.Second
	o.Refresh = 100 * time.Millisecond
	o.ListenAddress = "127.0.0.1:0"
	var out bytes.Buffer
	if err := Run(context.Background(), o, &out, false, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	final := out.String()[strings.LastIndex(out.String(), "final state"):]
	for _, want := range []string{"H100 80GB HBM3", "xid 31 ×1", "LOST (off the bus)", "collector nvml: ok", "/metrics",
		"llm/vllm-0", "collector pods: ok", "8 istio-proxy sidecars in 8 GPU pods", "mesh VRAM 0 B (measured)"} {
		if !strings.Contains(final, want) {
			t.Errorf("final view lacks %q:\n%s", want, final)
		}
	}
	if n := strings.Count(final, "H100 80GB HBM3"); n != 8 {
		t.Errorf("final view lists %d GPU rows, want 8 (the lost one keeps its row):\n%s", n, final)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Duration, o.Refresh, o.Processes = -time.Second, time.Millisecond, 0
	if err := o.Validate(); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Fatalf("want three errors, got %v", err)
	}
}
