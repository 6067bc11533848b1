//go:build cgo

package energy_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/collector/energy"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/snapshot"
)

// rig samples a simulated H100 server with the real nvml source and runs
// the energy step over each snapshot, the pods' join played by owners
// (PID → namespace/pod/container) and a token counter per pod.
type rig struct {
	sim    *gpusim.Server
	clk    *testutil.Clock
	nvml   *nvml.Source
	energy *energy.Source
	owners map[uint32][3]string
	tokens map[string]float64
}

func newRig(t *testing.T) *rig {
	t.Helper()
	clk := testutil.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	sim, err := gpusim.New(gpusim.Options{Profile: "dgxh100", Seed: 7, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src := nvml.New(ctx, gonvml.FromInterface(sim), testutil.Logger())
	t.Cleanup(func() { cancel(); _ = src.Close() })
	return &rig{sim: sim, clk: clk, nvml: src, energy: energy.New(), owners: map[uint32][3]string{}, tokens: map[string]float64{}}
}

func (r *rig) sample(t *testing.T) *snapshot.Snapshot {
	t.Helper()
	ctx := context.Background()
	rd, err := r.nvml.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &snapshot.Snapshot{Node: "n", Time: r.clk.Now()}
	rd.Own(s)
	pods := map[string]*snapshot.Pod{}
	for gi := range s.GPUs {
		for pi := range s.GPUs[gi].Processes {
			p := &s.GPUs[gi].Processes[pi]
			if o, ok := r.owners[p.PID]; ok {
				p.Namespace, p.Pod, p.Container = o[0], o[1], o[2]
				pods[o[1]] = &snapshot.Pod{Namespace: o[0], Name: o[1]}
			}
		}
	}
	s.Attribution = &snapshot.Attribution{}
	for name, p := range pods {
		if n, ok := r.tokens[name]; ok {
			p.ModelServer = &snapshot.ModelServer{Engine: "vllm", SampleTime: s.Time,
				Stats: snapshot.ModelServerStats{GenerationTokens: n, HasGenerationTokens: true}}
		}
		s.Attribution.Pods = append(s.Attribution.Pods, *p)
	}
	erd, err := r.energy.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	part, err := erd.Enrich(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	part(s)
	return s
}

func near(a, b float64) bool { return math.Abs(a-b) < 0.01 }

// TestAttributionByHand checks the split against a hand computation from
// the simulator's power model (idle 70 W, TDP 700 W, linear in load) and
// its per-process SM utilisation (the GPU's load split by SM share).
func TestAttributionByHand(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// GPU 0 at load 0.6: 448 W. Pod a's process has 2/3 of the SMs
	// (40 %), pod b's 1/3 (20 %); 40 % of the time no kernel runs.
	r.sim.SetLoad(0, 0.6)
	r.sim.SetProcesses(0, []gpusim.Process{{PID: 100, VRAM: 1 << 30, SMShare: 2, MIGInstance: -1}, {PID: 101, VRAM: 1 << 30, SMShare: 1, MIGInstance: -1}})
	// GPU 1: no process, 70 W, all idle.
	// GPU 2 at load 0.5 (385 W) with a process in no pod.
	r.sim.SetLoad(2, 0.5)
	r.sim.SetProcesses(2, []gpusim.Process{{PID: 200, VRAM: 1 << 30, MIGInstance: -1}})
	r.owners[100] = [3]string{"ns", "a", "vllm"}
	r.owners[101] = [3]string{"ns", "b", "vllm"}
	// Pod a generates 50 tokens a second; pod b's server counts none.
	r.tokens["a"] = 1000

	first := r.sample(t)
	if len(first.Energy.Containers) != 0 || len(first.Energy.PerOutputToken) != 0 {
		t.Fatalf("the first sample only sets baselines, got %+v", first.Energy)
	}
	r.clk.Add(10 * time.Second)
	r.tokens["a"] = 1500
	s := r.sample(t)

	if e := s.GPUs[0].EnergyJoules; e == nil || !near(*e, 4480) {
		t.Errorf("GPU 0 energy counter = %v J, want 448 W × 10 s = 4480 J", e)
	}
	want := map[string]float64{"a": 4480 * 0.4, "b": 4480 * 0.2}
	for _, c := range s.Energy.Containers {
		if c.GPU != s.GPUs[0].UUID || !near(c.Joules, want[c.Pod]) {
			t.Errorf("container %+v, want %.1f J on GPU 0", c, want[c.Pod])
		}
		delete(want, c.Pod)
	}
	if len(want) != 0 {
		t.Errorf("no energy charged to %v", want)
	}
	gpu := func(i int) snapshot.GPUEnergy { return s.Energy.GPUs[s.GPUs[i].UUID] }
	for _, tc := range []struct {
		name      string
		got, want snapshot.GPUEnergy
	}{
		{"GPU 0: 40 % of 4480 J idle", gpu(0), snapshot.GPUEnergy{Idle: 1792}},
		{"GPU 1: 70 W × 10 s, no process", gpu(1), snapshot.GPUEnergy{Idle: 700}},
		{"GPU 2: half of 3850 J unowned, half idle", gpu(2), snapshot.GPUEnergy{Idle: 1925, Unowned: 1925}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !near(tc.got.Idle, tc.want.Idle) || !near(tc.got.Unowned, tc.want.Unowned) || !near(tc.got.Unknown, tc.want.Unknown) {
				t.Errorf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
	// 448 W × 40 % / 50 tokens/s = 3.584 J per output token.
	if len(s.Energy.PerOutputToken) != 1 || s.Energy.PerOutputToken[0].Pod != "a" || !near(s.Energy.PerOutputToken[0].Joules, 3.584) {
		t.Errorf("per output token = %+v, want pod a at 3.584 J", s.Energy.PerOutputToken)
	}

	// Ten more seconds with no new token: the ratio stands, and the energy
	// is carried to the next tokens (twice the energy over 500 tokens).
	r.clk.Add(10 * time.Second)
	if s := r.sample(t); !near(s.Energy.PerOutputToken[0].Joules, 3.584) {
		t.Errorf("with no new token the ratio moved: %+v", s.Energy.PerOutputToken)
	}
	r.clk.Add(10 * time.Second)
	r.tokens["a"] = 2000
	if s := r.sample(t); !near(s.Energy.PerOutputToken[0].Joules, 2*3.584) {
		t.Errorf("per output token = %+v, want 20 s of pod a's energy over 500 tokens (7.168 J)", s.Energy.PerOutputToken)
	}
}

// TestNoUtilisationIsUnknown: processes without per-process utilisation
// (NVML has none for MIG slices) leave the energy unknown, not spread.
func TestNoUtilisationIsUnknown(t *testing.T) {
	t.Parallel()
	src := energy.New()
	g := snapshot.GPU{UUID: "GPU-x", EnergyJoules: ptr(100.0), Processes: []snapshot.Process{{PID: 1, Namespace: "ns", Pod: "c"}}}
	snap := &snapshot.Snapshot{GPUs: []snapshot.GPU{g}}
	run(t, src, snap)
	g.EnergyJoules = ptr(130.0)
	snap = &snapshot.Snapshot{GPUs: []snapshot.GPU{g}}
	run(t, src, snap)
	if got := snap.Energy.GPUs["GPU-x"]; got.Unknown != 30 || got.Idle != 0 || len(snap.Energy.Containers) != 0 {
		t.Errorf("energy %+v containers %+v, want 30 J unknown and nothing charged", got, snap.Energy.Containers)
	}
	// A counter that went back (driver reload) is a new baseline.
	g.EnergyJoules = ptr(5.0)
	snap = &snapshot.Snapshot{GPUs: []snapshot.GPU{g}}
	run(t, src, snap)
	if got := snap.Energy.GPUs["GPU-x"]; got.Unknown != 30 {
		t.Errorf("after a counter reset: %+v, want unchanged 30 J unknown", got)
	}
}

func ptr[T any](v T) *T { return &v }

func run(t *testing.T, src *energy.Source, snap *snapshot.Snapshot) {
	t.Helper()
	rd, err := src.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	part, err := rd.Enrich(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	part(snap)
}
