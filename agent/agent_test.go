//go:build cgo

package agent_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/gpusim"
)

// testOptions are the defaults (the built-in table: NVML through the
// driver) for node-a on a loopback port, sampling every 100 ms.
func testOptions() agent.Options {
	o := agent.DefaultOptions()
	o.NodeName = "node-a"
	o.ListenAddress = "127.0.0.1:0"
	o.Interval = 100 * time.Millisecond
	return o
}

// simulated returns o with the nvml collector reading sim's GPUs.
func simulated(o agent.Options, sim *gpusim.Server) agent.Options {
	o.Collectors = o.Collectors.With(nvml.Entry(gonvml.FromInterface(sim)))
	return o
}

// newSim is a simulated server of profile, populated with two processes
// per GPU.
func newSim(t *testing.T, profile string, seed uint64) *gpusim.Server {
	t.Helper()
	sim, err := gpusim.New(gpusim.Options{Profile: profile, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	sim.Populate(2, seed)
	return sim
}

// start runs an agent until the test ends and waits for its first sample.
func start(t *testing.T, o agent.Options) *agent.Agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, o, testutil.Logger())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("agent did not stop within 10s of cancellation")
		}
	})
	testutil.Eventually(t, 10*time.Second, "the first sample", func() bool { return a.Latest() != nil })
	return a
}

func get(t *testing.T, a *agent.Agent, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + a.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestWithoutNVMLLibrary runs the real go-nvml Init on a machine with no
// libnvidia-ml: the agent must stay up and serve with the source failed.
func TestWithoutNVMLLibrary(t *testing.T) {
	t.Parallel()
	if probe := gonvml.New(); probe.Init() == nil {
		_ = probe.Shutdown()
		t.Skip("libnvidia-ml is present here; this test covers hosts without it")
	}
	o := testOptions()
	a := start(t, o)
	time.Sleep(3 * o.Interval) // several ticks, each must stay NVML-free
	code, body := get(t, a, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`headroom_collector_success{collector="nvml"} 0`, "headroom_build_info{"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "headroom_gpu_") {
		t.Errorf("GPU metrics served without NVML")
	}
	if code, _ := get(t, a, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d, want 200: the agent serves its other sources", code)
	}
}

func TestServesSimulatedGPUs(t *testing.T) {
	t.Parallel()
	a := start(t, simulated(testOptions(), newSim(t, "dgxh200", 1)))
	code, body := get(t, a, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{
		`headroom_collector_success{collector="nvml"} 1`,
		`headroom_gpu_memory_total_bytes{container="",gpu="7",model="NVIDIA H200 141GB HBM3e",namespace="",node="node-a"`,
		`headroom_gpu_processes{container="",gpu="0"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/": 200, "/nope": 404} {
		if code, _ := get(t, a, path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}
}

// TestScrapeMakesNoNVMLCall counts NVML calls on the simulated GPUs: a
// scrape must read the snapshot, never the GPUs.
func TestScrapeMakesNoNVMLCall(t *testing.T) {
	t.Parallel()
	sim := newSim(t, "dgxh100", 3)
	o := simulated(testOptions(), sim)
	o.Interval = time.Hour // one sample at start, then none during the test
	a := start(t, o)
	before := sim.Calls()
	if before == 0 {
		t.Fatal("the sample made no NVML call; the counter is not counting")
	}
	for range 20 {
		if code, _ := get(t, a, "/metrics"); code != http.StatusOK {
			t.Fatalf("/metrics = %d", code)
		}
	}
	if after := sim.Calls(); after != before {
		t.Errorf("20 scrapes made %d NVML calls, want 0", after-before)
	}
}

func TestDebugProfilesOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	debugAddr := ln.Addr().String()
	ln.Close()
	o := simulated(testOptions(), newSim(t, "dgxh100", 1))
	o.DebugAddress = debugAddr
	a := start(t, o)
	if code, _ := get(t, a, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof on the metrics port: %d, want 404", code)
	}
	code := 0
	testutil.Eventually(t, 5*time.Second, "the debug server", func() bool {
		resp, err := http.Get("http://" + debugAddr + "/debug/pprof/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		code = resp.StatusCode
		return true
	})
	if code != http.StatusOK {
		t.Fatalf("pprof index = %d", code)
	}
}
