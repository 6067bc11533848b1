package podresources

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/sim/kubenode"
)

// newKubelet starts the simulated kubelet (the generated
// PodResourcesLister server) on a real unix socket.
func newKubelet(t *testing.T) *kubenode.Kubelet {
	t.Helper()
	dir, err := os.MkdirTemp("", "kubelet")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	k := kubenode.NewKubelet(filepath.Join(dir, "kubelet.sock"))
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	return k
}

func testClient(t *testing.T, k *kubenode.Kubelet, mutate func(*Options)) *Client {
	t.Helper()
	o := DefaultOptions()
	o.Socket = k.Socket()
	o.MinGap, o.MaxBackoff, o.Timeout = 10*time.Millisecond, 80*time.Millisecond, 2*time.Second
	if mutate != nil {
		mutate(&o)
	}
	c, err := New(o, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func pod(ns, name string, ctrs ...*podresv1.ContainerResources) *podresv1.PodResources {
	return &podresv1.PodResources{Namespace: ns, Name: name, Containers: ctrs}
}

func ctr(name, resource string, ids ...string) *podresv1.ContainerResources {
	c := &podresv1.ContainerResources{Name: name}
	if resource != "" {
		c.Devices = []*podresv1.ContainerDevices{{ResourceName: resource, DeviceIds: ids}}
	}
	return c
}
