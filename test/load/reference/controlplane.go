// Package reference runs the parts of the routing benchmark that this
// repository did not write, so that headroom is measured against them and
// not only against its own stand-ins: the Gateway API Inference
// Extension's endpoint picker (the EPP, a separate process) on a real
// kube-apiserver and etcd (controller-runtime's envtest) holding an
// InferencePool and its Ready pods, and llm-d's vLLM-compatible simulator
// (llm-d-inference-sim, one process per model server). The binaries come
// from hack/reference-tools.sh (`make reference-tools`), the control plane's
// from hack/envtest-assets.sh (`make envtest-assets`).
//
// Everything listens on and points at loopback addresses only.
package reference

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

var poolResource = schema.GroupVersionResource{Group: "inference.networking.k8s.io", Version: "v1", Resource: "inferencepools"}

// PoolLabel is the label every pod of a pool carries, with the pool's
// name as its value; the InferencePool selects on it.
const PoolLabel = "headroom.dev/pool"

// ControlPlane is a kube-apiserver and etcd holding the InferencePool CRD.
type ControlPlane struct {
	env *envtest.Environment
	cs  kubernetes.Interface
	dyn dynamic.Interface
	// Kubeconfig is a kubeconfig file for programs that take one.
	Kubeconfig string
	dir        string
	pools      atomic.Int64
}

// StartControlPlane starts etcd and kube-apiserver from assetsDir
// (KUBEBUILDER_ASSETS) and installs the InferencePool CRD from crdPath.
func StartControlPlane(assetsDir, crdPath string) (*ControlPlane, error) {
	for _, p := range []string{filepath.Join(assetsDir, "kube-apiserver"), filepath.Join(assetsDir, "etcd"), crdPath} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("control plane: %w (make envtest-assets builds the binaries)", err)
		}
	}
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime's global logger
	env := &envtest.Environment{BinaryAssetsDirectory: assetsDir, ControlPlaneStopTimeout: 5 * time.Second}
	env.CRDInstallOptions.Paths, env.CRDInstallOptions.ErrorIfPathMissing = []string{crdPath}, true
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	cp := &ControlPlane{env: env}
	if err := cp.init(cfg); err != nil {
		_ = cp.Stop()
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) init(cfg *rest.Config) error {
	var err error
	if cp.cs, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if cp.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	if cp.dir, err = os.MkdirTemp("", "headroom-controlplane"); err != nil {
		return err
	}
	cp.Kubeconfig = filepath.Join(cp.dir, "kubeconfig")
	return writeKubeconfig(cfg, cp.Kubeconfig)
}

func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*kc, path)
}

// Stop stops the control plane.
func (cp *ControlPlane) Stop() error {
	err := cp.env.Stop()
	if cp.dir != "" {
		err = errors.Join(err, os.RemoveAll(cp.dir))
	}
	return err
}

// Pool is an InferencePool in its own namespace.
type Pool struct{ Namespace, Name string }

// CreatePool creates a fresh namespace holding an InferencePool over the
// endpoints (ip:port, every port the same, as a pool's targetPorts are)
// and one Ready, running pod per endpoint with the endpoint's IP, as a
// kubelet would report it. Each call makes a new namespace, so a run never
// sees an earlier run's pods.
func (cp *ControlPlane) CreatePool(ctx context.Context, endpoints []string) (Pool, error) {
	port, err := commonPort(endpoints)
	if err != nil {
		return Pool{}, err
	}
	p := Pool{Namespace: fmt.Sprintf("bench-%d", cp.pools.Add(1)), Name: "llm"}
	if err := cp.createNamespace(ctx, p.Namespace); err != nil {
		return Pool{}, err
	}
	if err := cp.createPool(ctx, p, port); err != nil {
		return Pool{}, err
	}
	for i, ep := range endpoints {
		host, _, _ := net.SplitHostPort(ep)
		if err := cp.createPod(ctx, p, fmt.Sprintf("model-server-%d", i), host); err != nil {
			return Pool{}, err
		}
	}
	return p, nil
}

// commonPort is the port every endpoint shares.
func commonPort(endpoints []string) (int, error) {
	if len(endpoints) == 0 {
		return 0, errors.New("pool: no endpoints")
	}
	port := -1
	for _, ep := range endpoints {
		host, ps, err := net.SplitHostPort(ep)
		if err != nil || net.ParseIP(host) == nil {
			return 0, fmt.Errorf("pool: endpoint %q is not ip:port", ep)
		}
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("pool: endpoint %q has no valid port", ep)
		}
		if port >= 0 && n != port {
			return 0, fmt.Errorf("pool: endpoints listen on ports %d and %d; an InferencePool's pods share their target port", port, n)
		}
		port = n
	}
	return port, nil
}

func (cp *ControlPlane) createNamespace(ctx context.Context, ns string) error {
	if _, err := cp.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", ns, err)
	}
	// No controller-manager runs to create the ServiceAccount pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := cp.cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create service account in %s: %w", ns, err)
	}
	return nil
}

func (cp *ControlPlane) createPool(ctx context.Context, p Pool, port int) error {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
		"metadata": map[string]any{"name": p.Name, "namespace": p.Namespace},
		"spec": map[string]any{
			"selector":    map[string]any{"matchLabels": map[string]any{PoolLabel: p.Name}},
			"targetPorts": []any{map[string]any{"number": int64(port)}},
			"endpointPickerRef": map[string]any{
				"name": "epp", "port": map[string]any{"number": int64(9002)},
			},
		},
	}}
	if _, err := cp.dyn.Resource(poolResource).Namespace(p.Namespace).Create(ctx, u, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create InferencePool: %w", err)
	}
	return nil
}

// createPod creates the pod and plays its kubelet: running, ready, ip.
func (cp *ControlPlane) createPod(ctx context.Context, p Pool, name, ip string) error {
	pods := cp.cs.CoreV1().Pods(p.Namespace)
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{PoolLabel: p.Name}},
		Spec: corev1.PodSpec{NodeName: "gpu-node",
			Containers: []corev1.Container{{Name: "model-server", Image: "example.invalid/vllm:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %s: %w", name, err)
	}
	pod.Status.Phase, pod.Status.PodIP, pod.Status.PodIPs = corev1.PodRunning, ip, []corev1.PodIP{{IP: ip}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set status of pod %s: %w", name, err)
	}
	return nil
}
