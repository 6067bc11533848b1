package podresources

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/headroom-dev/headroom/internal/testutil"
)

const (
	gpu0 = "GPU-00000000-1111-2222-3333-444444444444"
	gpu1 = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	mig0 = "MIG-99999999-8888-7777-6666-555555555555"
)

func TestListAttributesEveryForm(t *testing.T) {
	t.Parallel()
	k := newKubelet(t)
	dra := ctr("trainer", "")
	dra.DynamicResources = []*podresv1.DynamicResource{{ClaimName: "gpu", ClaimNamespace: "ml", ClaimResources: []*podresv1.ClaimResource{
		{DriverName: "gpu.nvidia.com", PoolName: "node-a", DeviceName: "gpu-3"},
		{DriverName: "gpu.nvidia.com", PoolName: "node-a", DeviceName: "gpu-5-mig-9-4-2"}, // a MIG device of GPU minor 5
		{DriverName: "gpu.nvidia.com", PoolName: "node-a", DeviceName: "gpu-3-mig-1"},     // no such form
		{DriverName: "gpu.nvidia.com", PoolName: "node-a", DeviceName: "gpu-vfio-0"},      // passthrough: no GPU process here
		{DriverName: "net.example.com", DeviceName: "nic-0"},                              // not a GPU
	}}}
	native := ctr("istio-proxy", "") // a native sidecar: listed, no devices
	k.SetPods([]*podresv1.PodResources{
		pod("llm", "vllm-0", ctr("vllm", "nvidia.com/gpu", gpu0), native),
		pod("llm", "small-a", ctr("srv", "nvidia.com/gpu", gpu1+"::0")),
		pod("llm", "small-b", ctr("srv", "nvidia.com/gpu", gpu1+"::1")),
		pod("llm", "mig", ctr("srv", "nvidia.com/mig-1g.10gb", mig0)),
		pod("gke", "g", ctr("srv", "nvidia.com/gpu", "nvidia2", "nvidia4/gi1")),
		pod("ml", "train", dra),
		pod("other", "fpga", ctr("x", "example.com/fpga", "fpga0")),
		pod("llm", "odd", ctr("srv", "nvidia.com/gpu", "gpu-zero")),
	})
	k.SetAllocatable("nvidia.com/gpu", gpu0, gpu1+"::0", gpu1+"::1")

	c := testClient(t, k, nil)
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v := c.View()
	type key struct{ pod, container, id string }
	got := map[key]DeviceRef{}
	for _, a := range v.Assignments {
		got[key{a.Namespace + "/" + a.Pod, a.Container, a.ID}] = a.Device
	}
	want := map[key]DeviceKind{
		{"llm/vllm-0", "vllm", gpu0}:               KindGPU,
		{"llm/small-a", "srv", gpu1 + "::0"}:       KindGPU,
		{"llm/small-b", "srv", gpu1 + "::1"}:       KindGPU,
		{"llm/mig", "srv", mig0}:                   KindMIG,
		{"gke/g", "srv", "nvidia2"}:                KindIndex,
		{"gke/g", "srv", "nvidia4/gi1"}:            KindIndexMIG,
		{"ml/train", "trainer", "gpu-3"}:           KindMinor,
		{"ml/train", "trainer", "gpu-5-mig-9-4-2"}: KindMinorMIG,
	}
	if len(got) != len(want) {
		t.Errorf("got %d assignments, want %d: %+v", len(got), len(want), v.Assignments)
	}
	for k, kind := range want {
		if got[k].Kind != kind {
			t.Errorf("%v: kind %v, want %v", k, got[k].Kind, kind)
		}
	}
	if a, b := got[key{"llm/small-a", "srv", gpu1 + "::0"}], got[key{"llm/small-b", "srv", gpu1 + "::1"}]; a.UUID != b.UUID || !a.Shared() {
		t.Errorf("time-sliced pods should share %s: %+v %+v", gpu1, a, b)
	}
	if m := got[key{"ml/train", "trainer", "gpu-5-mig-9-4-2"}]; m.Index != 5 || m.MIGPlacement == nil || *m.MIGPlacement != (MIGPlacement{Profile: 9, Start: 4, Size: 2}) {
		t.Errorf("DRA MIG device = %+v, want GPU minor 5, profile 9 at slices 4+2", m)
	}
	if v.Unparsed != 3 {
		t.Errorf("unparsed = %d, want 3 (gpu-zero, the DRA name in no known form and the passthrough device)", v.Unparsed)
	}
	if len(v.Allocatable) != 3 {
		t.Errorf("allocatable = %+v, want the 3 GPU devices", v.Allocatable)
	}
}

func TestRateLimitBacksOff(t *testing.T) {
	t.Parallel()
	k := newKubelet(t)
	k.ExhaustNext(1000)
	c := testClient(t, k, func(o *Options) { o.Interval = time.Millisecond })
	if err := c.Refresh(context.Background()); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := k.Calls()
	c.Run(ctx)
	// Backoff 10, 20, 40, 80, 80… ms: about 7 refreshes in 400 ms, where
	// the 1 ms interval alone would allow hundreds.
	if n := k.Calls() - start; n > 10 {
		t.Errorf("%d calls in 400 ms while rate limited, want backoff (≤ 10)", n)
	}
	if st := c.Status(); st.StaleSince.IsZero() || st.Failures == 0 {
		t.Errorf("status %+v: want stale with failures", st)
	}
}

func TestKubeletRestartMidRun(t *testing.T) {
	t.Parallel()
	k := newKubelet(t)
	k.Assign("llm", "a", "srv", "nvidia.com/gpu", gpu0)
	c := testClient(t, k, nil)
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	before := c.View()

	k.Stop()
	if err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh succeeded with the kubelet down")
	}
	st := c.Status()
	if st.StaleSince.IsZero() || c.View() != before {
		t.Fatalf("down: status %+v; the last good view must be kept", st)
	}

	k.Reset()
	k.Assign("llm", "b", "srv", "nvidia.com/gpu", gpu1)
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, 10*time.Second, 20*time.Millisecond, func() error {
		if err := c.Refresh(ctx); err != nil {
			return fmt.Errorf("no reconnect: %w", err)
		}
		return nil
	})
	if st := c.Status(); !st.StaleSince.IsZero() || c.View().Assignments[0].Pod != "b" {
		t.Errorf("after restart: status %+v, view %+v", st, c.View().Assignments)
	}
}

func TestTriggersCoalesceAndRespectMinGap(t *testing.T) {
	t.Parallel()
	k := newKubelet(t)
	c := testClient(t, k, func(o *Options) { o.Interval, o.MinGap = time.Hour, 100*time.Millisecond })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	for c.Status().Refreshes == 0 {
		time.Sleep(time.Millisecond)
	}
	for range 50 {
		c.Trigger()
		time.Sleep(time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond)
	cancel()
	<-done
	if n := c.Status().Refreshes; n < 2 || n > 3 {
		t.Errorf("%d refreshes for 50 triggers in ~200 ms with a 100 ms gap, want 2-3", n)
	}
}
