//go:build cgo

package agent_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/sim/kubenode"
)

// TestDRAClaimsMapToGPUsByMinor: pods whose GPUs come from NVIDIA's DRA
// driver (pod-resources dynamic resources, device names gpu-<minor> and
// gpu-<minor>-mig-<profile>-<start>-<size>) own the GPU whose minor number
// is in the name, not the GPU at that NVML index: here GPUs 3 and 5 have
// each other's minor numbers.
func TestDRAClaimsMapToGPUsByMinor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sim, err := gpusim.New(gpusim.Options{Profile: "dgxh100", Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	sim.SetMinor(3, 5)
	sim.SetMinor(5, 3)
	claim := func(ns, pod, container, device string) *podresv1.PodResources {
		return &podresv1.PodResources{Namespace: ns, Name: pod, Containers: []*podresv1.ContainerResources{{
			Name: container, DynamicResources: []*podresv1.DynamicResource{{ClaimName: "gpu", ClaimNamespace: ns,
				ClaimResources: []*podresv1.ClaimResource{{DriverName: "gpu.nvidia.com", PoolName: "node-a", DeviceName: device}}}},
		}}}
	}
	kubelet := kubenode.NewKubelet(filepath.Join(dir, "kubelet.sock"))
	kubelet.SetPods([]*podresv1.PodResources{
		claim("ml", "whole", "trainer", "gpu-5"),
		claim("ml", "slice", "srv", "gpu-3-mig-9-4-2"),
	})
	runtime := kubenode.NewRuntime(filepath.Join(dir, "containerd.sock"))
	for _, start := range []func() error{kubelet.Start, runtime.Start} {
		if err := start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(kubelet.Stop)
	t.Cleanup(runtime.Stop)
	tree, err := kubenode.NewTree(dir)
	if err != nil {
		t.Fatal(err)
	}

	o := simulated(testOptions(), sim)
	po := pods.DefaultOptions()
	po.KubeletSocket, po.RuntimeSocket, po.Refresh = kubelet.Socket(), runtime.Socket(), time.Second
	o.Collectors = o.Collectors.With(pods.Entry(po))
	o.Host = collector.Host{ProcRoot: tree.Proc, CgroupRoot: tree.Cgroup}
	a := start(t, o)
	body := waitMetrics(t, a,
		fmt.Sprintf(`headroom_gpu_owner_info{container="trainer",gpu="3",namespace="ml",node="node-a",pod="whole",uuid="%s"} 1`, sim.UUID(3)),
		fmt.Sprintf(`headroom_gpu_owner_info{container="srv",gpu="5",namespace="ml",node="node-a",pod="slice",uuid="%s"} 1`, sim.UUID(5)),
	)
	for _, gpu := range []int{0, 1, 2, 4, 6, 7} {
		if want := fmt.Sprintf(`headroom_gpu_owner_info{container="trainer",gpu="%d"`, gpu); strings.Contains(body, want) {
			t.Errorf("a DRA claim landed on GPU %d", gpu)
		}
	}
}
