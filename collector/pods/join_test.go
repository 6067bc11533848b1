package pods

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/collector/cgroups"
	"github.com/headroom-dev/headroom/collector/cri"
	"github.com/headroom-dev/headroom/collector/podresources"
	"github.com/headroom-dev/headroom/snapshot"
)

func ref(t *testing.T, id string) podresources.DeviceRef {
	t.Helper()
	r, err := podresources.ParseDeviceID(id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	g0 = "GPU-00000000-0000-4000-8000-000000000000"
	g1 = "GPU-11111111-0000-4000-8000-000000000000"
	m1 = "MIG-11111111-0000-4000-8000-0000000000aa"
)

// gpus are two GPUs whose minor numbers are not their NVML indices.
func gpus() []snapshot.GPU {
	minor := func(n int) *int { return &n }
	return []snapshot.GPU{
		{Index: 0, UUID: g0, Minor: minor(1), Processes: []snapshot.Process{{PID: 1, UsedMemory: 100}, {PID: 2, UsedMemory: 30}, {PID: 9, UsedMemory: 5}}},
		{Index: 1, UUID: g1, Minor: minor(0), MIG: []snapshot.MIGDevice{{UUID: m1, GPUInstanceID: 1}},
			Processes: []snapshot.Process{{PID: 3, UsedMemory: 7, MIGInstance: 1}, {PID: 4, UsedMemory: 1}, {PID: 5, UsedMemory: 2}}},
	}
}

func TestJoin(t *testing.T) {
	t.Parallel()
	alloc := &podresources.View{Assignments: []podresources.Assignment{
		{Namespace: "ml", Pod: "a", Container: "app", Device: ref(t, g0)},
		{Namespace: "ml", Pod: "b", Container: "app", Device: ref(t, m1)},         // MIG → GPU 1
		{Namespace: "ml", Pod: "c", Container: "app", Device: ref(t, "nvidia1")},  // GKE index → GPU 1
		{Namespace: "ml", Pod: "c", Container: "app", Device: ref(t, "nvidia1")},  // listed twice: one owner
		{Namespace: "ml", Pod: "d", Container: "app", Device: draRef(t, "gpu-0")}, // DRA, minor 0 → GPU 1
	}}
	rt := cri.NewView(time.Now(), []cri.Pod{
		{UID: "ua", Namespace: "ml", Name: "a", IP: "10.0.0.1", Containers: []cri.Container{{ID: "ca", Name: "app"}, {ID: "cp", Name: "istio-proxy"}}},
		{UID: "ub", Namespace: "ml", Name: "b", Containers: []cri.Container{{ID: "cb", Name: "app"}}},
		{UID: "uc", Namespace: "ml", Name: "c", Containers: []cri.Container{{ID: "cc", Name: "app"}}},
		{UID: "ux", Namespace: "web", Name: "x", Containers: []cri.Container{{ID: "cx", Name: "nginx"}}}, // no GPU
	})
	pids := map[uint32]cgroups.Ref{1: {PodUID: "ua", ContainerID: "ca"}, 2: {PodUID: "ua", ContainerID: "cp"}, 3: {PodUID: "ub", ContainerID: "cb"}, 4: {PodUID: "uz", ContainerID: "cz"}}
	resolve := func(pid uint32) (cgroups.Ref, error) {
		switch pid {
		case 5:
			return cgroups.Ref{}, fmt.Errorf("pid 5: %w", cgroups.ErrProcessGone)
		case 9:
			return cgroups.Ref{}, fmt.Errorf("host: %w", cgroups.ErrNotContainer)
		}
		return pids[pid], nil
	}
	gs := gpus()
	a, procs, stale := join(gs, joinInput{alloc: alloc, runtime: rt, resolve: resolve,
		memory:   map[string]*snapshot.ContainerMemory{"cp": {WorkingSet: 42}},
		sidecars: map[string]bool{"istio-proxy": true}})
	if p := gs[0].Processes[0]; p.Namespace != "" {
		t.Errorf("join wrote process 1's owner %+v itself; it only reads the GPUs", p)
	}
	setOwners(gs, procs)

	if !stale {
		t.Error("pid 4 is in a container the runtime does not know: want an early refresh")
	}
	if a.UnattributedProcesses != 2 {
		t.Errorf("unattributed = %d, want 2 (the host process and the unknown container; the exited one is skipped)", a.UnattributedProcesses)
	}
	if len(a.Owners[g0]) != 1 || len(a.Owners[g1]) != 3 || a.Owners[g1][2].Pod != "d" {
		t.Errorf("owners = %+v, want 1 on GPU 0 and 3 (MIG, GKE index and DRA minor 0) on GPU 1", a.Owners)
	}
	if p := gs[0].Processes[0]; p.Namespace != "ml" || p.Pod != "a" || p.Container != "app" {
		t.Errorf("process 1 = %+v", p)
	}
	if a.MeshVRAM != 30 {
		t.Errorf("mesh VRAM = %d, want the 30 bytes held by the process in istio-proxy", a.MeshVRAM)
	}
	if len(a.Pods) != 3 || a.Pods[0].Name != "a" {
		t.Fatalf("GPU pods = %+v, want a, b, c", a.Pods)
	}
	proxy := a.Pods[0].Containers[1]
	if !proxy.Sidecar || proxy.Memory == nil || proxy.Memory.WorkingSet != 42 {
		t.Errorf("sidecar = %+v", proxy)
	}
	if u := a.Pods[1].Containers[0].GPUs[g1]; u.Memory != 7 || u.Contexts != 1 {
		t.Errorf("pod b on GPU 1 = %+v", u)
	}
	for i, want := range [][]string{{g0}, {g1}, {g1}} {
		if !slices.Equal(a.Pods[i].GPUs, want) {
			t.Errorf("pod %s GPUs = %v, want %v", a.Pods[i].Name, a.Pods[i].GPUs, want)
		}
	}
}

func TestJoinBeforeTheViews(t *testing.T) {
	t.Parallel()
	gs := gpus()
	a, procs, stale := join(gs, joinInput{resolve: func(uint32) (cgroups.Ref, error) { return cgroups.Ref{PodUID: "u", ContainerID: "c"}, nil }})
	if !stale || len(a.Pods) != 0 || a.UnattributedProcesses != 6 || len(procs) != 0 {
		t.Errorf("without views: stale=%v attribution=%+v", stale, a)
	}
}

// TestJoinPodGPUsAndMeta: a pod's GPUs are the ones assigned to it plus
// the ones its processes use, sorted; its model-server labels and
// annotations are carried over.
func TestJoinPodGPUsAndMeta(t *testing.T) {
	t.Parallel()
	alloc := &podresources.View{Assignments: []podresources.Assignment{
		{Namespace: "ml", Pod: "a", Container: "app", Device: ref(t, g1)},
		{Namespace: "ml", Pod: "b", Container: "app", Device: ref(t, g0)},
	}}
	rt := cri.NewView(time.Now(), []cri.Pod{
		{UID: "ua", Namespace: "ml", Name: "a", IP: "10.0.0.1", Containers: []cri.Container{{ID: "ca", Name: "app"}},
			Meta: cri.Meta{Engine: "sglang", MetricsPort: "30000", MetricsPath: "/stats"}},
		{UID: "ub", Namespace: "ml", Name: "b", IP: "10.0.0.2", Containers: []cri.Container{{ID: "cb", Name: "app"}},
			Meta: cri.Meta{MetricsPort: "http"}},
	})
	gs := []snapshot.GPU{
		{Index: 0, UUID: g0, Processes: []snapshot.Process{{PID: 1, UsedMemory: 1}}},
		{Index: 1, UUID: g1, Processes: []snapshot.Process{{PID: 2, UsedMemory: 1}}},
	}
	resolve := func(uint32) (cgroups.Ref, error) { return cgroups.Ref{PodUID: "ua", ContainerID: "ca"}, nil }
	a, _, _ := join(gs, joinInput{alloc: alloc, runtime: rt, resolve: resolve})
	if len(a.Pods) != 2 {
		t.Fatalf("pods %+v", a.Pods)
	}
	pa, pb := a.Pods[0], a.Pods[1]
	if !slices.Equal(pa.GPUs, []string{g0, g1}) {
		t.Errorf("pod a GPUs = %v, want its process's GPU 0 and its assigned GPU 1, sorted", pa.GPUs)
	}
	if pa.Engine != "sglang" || pa.MetricsPort != 30000 || pa.MetricsPath != "/stats" {
		t.Errorf("pod a meta = %q %d %q", pa.Engine, pa.MetricsPort, pa.MetricsPath)
	}
	if !slices.Equal(pb.GPUs, []string{g0}) || pb.MetricsPort != 0 {
		t.Errorf("pod b: GPUs %v (want the assigned GPU 0), port %d (want 0 for a non-numeric annotation)", pb.GPUs, pb.MetricsPort)
	}
}

// TestJoinDRAByMinorNumber: NVIDIA's DRA driver names GPUs by minor
// number (gpu-<minor>, and gpu-<minor>-mig-… for a MIG device), which is
// not the NVML index: here GPU 0 has minor 1 and GPU 1 minor 0. A claim of
// gpu-0 lands on GPU 1, a MIG device of minor 1 on GPU 0, and a minor no
// GPU has lands nowhere.
func TestJoinDRAByMinorNumber(t *testing.T) {
	t.Parallel()
	minor := func(n int) *int { return &n }
	gs := []snapshot.GPU{{Index: 0, UUID: g0, Minor: minor(1)}, {Index: 1, UUID: g1, Minor: minor(0)}, {Index: 2, UUID: "GPU-no-minor"}}
	dra := func(pod, name string) podresources.Assignment {
		return podresources.Assignment{Namespace: "ml", Pod: pod, Container: "app", Device: draRef(t, name), ID: name}
	}
	alloc := &podresources.View{Assignments: []podresources.Assignment{
		dra("whole", "gpu-0"), dra("slice", "gpu-1-mig-19-6-1"), dra("none", "gpu-7"),
	}}
	got := owners(gs, alloc)
	want := map[string][]snapshot.Owner{
		g1: {{Namespace: "ml", Pod: "whole", Container: "app"}},
		g0: {{Namespace: "ml", Pod: "slice", Container: "app"}},
	}
	if len(got) != len(want) || !slices.Equal(got[g0], want[g0]) || !slices.Equal(got[g1], want[g1]) {
		t.Errorf("owners = %+v, want %+v", got, want)
	}
}

func draRef(t *testing.T, name string) podresources.DeviceRef {
	t.Helper()
	r, ok := podresources.ParseDRADevice("gpu.nvidia.com", name)
	if !ok {
		t.Fatalf("DRA device %q not parsed", name)
	}
	return r
}

// TestJoinMIGSlicesPerPod: two pods on two slices of one GPU, one known by
// its device-plugin assignment, the other by its process's GPU instance;
// each holds its own slice only, and both hold the GPU.
func TestJoinMIGSlicesPerPod(t *testing.T) {
	t.Parallel()
	const m2 = "MIG-11111111-0000-4000-8000-0000000000bb"
	gs := []snapshot.GPU{{Index: 1, UUID: g1,
		MIG:       []snapshot.MIGDevice{{UUID: m1, GPUInstanceID: 1}, {UUID: m2, GPUInstanceID: 2}},
		Processes: []snapshot.Process{{PID: 3, UsedMemory: 7, MIGInstance: 2}}}}
	alloc := &podresources.View{Assignments: []podresources.Assignment{{Namespace: "ml", Pod: "a", Container: "app", Device: ref(t, m1)}}}
	rt := cri.NewView(time.Now(), []cri.Pod{
		{UID: "ua", Namespace: "ml", Name: "a", Containers: []cri.Container{{ID: "ca", Name: "app"}}},
		{UID: "ub", Namespace: "ml", Name: "b", Containers: []cri.Container{{ID: "cb", Name: "app"}}},
	})
	resolve := func(uint32) (cgroups.Ref, error) { return cgroups.Ref{PodUID: "ub", ContainerID: "cb"}, nil }
	a, _, _ := join(gs, joinInput{alloc: alloc, runtime: rt, resolve: resolve})
	if len(a.Pods) != 2 {
		t.Fatalf("pods %+v", a.Pods)
	}
	for i, want := range []string{m1, m2} {
		p := a.Pods[i]
		if !slices.Equal(p.MIG, []string{want}) || !slices.Equal(p.GPUs, []string{g1}) {
			t.Errorf("pod %s: MIG %v GPUs %v, want slice %s of GPU %s", p.Name, p.MIG, p.GPUs, want, g1)
		}
	}
}
