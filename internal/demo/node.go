//go:build cgo

package demo

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/sim/gpusim"
	"github.com/headroom-dev/headroom/sim/kubenode"
)

// kubeNode gives the simulated server a Kubernetes side: one vLLM pod with
// an istio-proxy sidecar per GPU, served by a fake kubelet and CRI runtime,
// with their processes and cgroups in a /proc and cgroup tree on disk.
type kubeNode struct {
	dir     string
	kubelet *kubenode.Kubelet
	runtime *kubenode.Runtime
	tree    *kubenode.Tree
}

func startKubeNode(sim *gpusim.Server) (*kubeNode, error) {
	dir, err := os.MkdirTemp("", "headroom-demo")
	if err != nil {
		return nil, err
	}
	n := &kubeNode{dir: dir, kubelet: kubenode.NewKubelet(filepath.Join(dir, "kubelet.sock")),
		runtime: kubenode.NewRuntime(filepath.Join(dir, "containerd.sock"))}
	if n.tree, err = kubenode.NewTree(dir); err != nil {
		n.stop()
		return nil, err
	}
	for i := range sim.NumGPUs() {
		if err := n.addPod(sim, i); err != nil {
			n.stop()
			return nil, err
		}
	}
	if err := n.kubelet.Start(); err != nil {
		n.stop()
		return nil, err
	}
	if err := n.runtime.Start(); err != nil {
		n.stop()
		return nil, err
	}
	return n, nil
}

// podIP is the IP of vllm-<i>.
func podIP(i int) string { return fmt.Sprintf("10.42.0.%d", 10+i) }

// podEndpoints lists the vLLM pods' serving addresses, for the picker.
func podEndpoints(n int) string {
	eps := make([]string, n)
	for i := range n {
		eps[i] = podIP(i) + ":8000"
	}
	return strings.Join(eps, ",")
}

// addPod puts vllm-<i> on GPU i with the GPU's processes in its vllm
// container.
func (n *kubeNode) addPod(sim *gpusim.Server, i int) error {
	uid := fmt.Sprintf("de300000-0000-4000-8000-%012d", i)
	app, proxy := fmt.Sprintf("%064x", 2*i+1), fmt.Sprintf("%064x", 2*i+2)
	name := fmt.Sprintf("vllm-%d", i)
	n.kubelet.Assign("llm", name, "vllm", "nvidia.com/gpu", sim.UUID(i))
	n.kubelet.Assign("llm", name, "istio-proxy", "")
	n.runtime.AddPod(uid, "llm", name, podIP(i), map[string]string{"vllm": app, "istio-proxy": proxy})
	// Host memory as such pods use it: the server's process a few GiB,
	// the Envoy sidecar tens of MiB.
	if err := n.tree.AddContainer(uid, app, uint64(3+i%3)<<30, 1<<30, uint64(3+i%3)<<30, 100); err != nil {
		return err
	}
	if err := n.tree.AddContainer(uid, proxy, uint64(60+5*i)<<20, 8<<20, uint64(55+5*i)<<20, 5); err != nil {
		return err
	}
	for _, p := range sim.Processes(i) {
		if err := n.tree.AddProcess(p.PID, uid, app); err != nil {
			return err
		}
	}
	return nil
}

func (n *kubeNode) options() pods.Options {
	o := pods.DefaultOptions()
	o.KubeletSocket, o.RuntimeSocket = n.kubelet.Socket(), n.runtime.Socket()
	o.ProcRoot, o.CgroupRoot = n.tree.Proc, n.tree.Cgroup
	return o
}

func (n *kubeNode) stop() {
	n.kubelet.Stop()
	n.runtime.Stop()
	_ = os.RemoveAll(n.dir)
}
