package faults

import (
	"net/http"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/headroom-dev/headroom/internal/testenv"
	"github.com/headroom-dev/headroom/picker/app"
)

// watchRetries is how long the picker must keep routing with the API
// server down: several of client-go's watch retries.
const watchRetries = 5 * time.Second

var poolResource = schema.GroupVersionResource{Group: "inference.networking.k8s.io", Version: "v1", Resource: "inferencepools"}

// TestPoolFaults runs the whole picker on an InferencePool in a real
// kube-apiserver and etcd (envtest) and takes the pool away in each way
// the cluster can: the pool selects no pod, the pool is deleted, the API
// server stops. The steps run in order on one picker; the API server
// stays down after the last. Like the other envtest tests it fails, not
// skips, without the binaries; -short leaves it out.
func TestPoolFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd (envtest); runs without -short")
	}
	crd := filepath.Join(testenv.ModuleDir(t, "sigs.k8s.io/gateway-api-inference-extension"),
		"config", "crd", "bases", "inference.networking.k8s.io_inferencepools.yaml")
	// kube-apiserver drains for long on SIGTERM while watches are open:
	// after 3 s it is killed, as a crashed one would be.
	env, cfg := testenv.Start(t, testenv.WithCRDs(crd), func(e *envtest.Environment) { e.ControlPlaneStopTimeout = 3 * time.Second })
	c := newCluster(t, cfg, "faults")
	c.createPool(t, "app", "llm")
	c.createPod(t, "a", "10.9.0.1")
	c.createPod(t, "b", "10.9.0.2")
	p := startPicker(t, func(o *app.Options) {
		o.Pool.Pool, o.Pool.Namespace, o.Kubeconfig = "llm", c.ns, testenv.Kubeconfig(t, cfg)
	})
	// Fresh telemetry for both pods for the whole test.
	p.send(t, nodeReport("gpu-1", 1, time.Minute, modelServerPod("a", "10.9.0.1", 1, 0.2), modelServerPod("b", "10.9.0.2", 1, 0.2)))
	p.waitReadiness(t, true)
	routesToPool(t, p)

	t.Run("pool selects no pod", func(t *testing.T) {
		c.setSelector(t, "app", "nothing")
		noEndpoint(t, p)
		c.setSelector(t, "app", "llm")
		p.waitReadiness(t, true)
		routesToPool(t, p)
	})
	t.Run("pool deleted", func(t *testing.T) {
		if err := c.pools().Delete(t.Context(), "llm", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete InferencePool: %v", err)
		}
		noEndpoint(t, p)
		c.createPool(t, "app", "llm")
		p.waitReadiness(t, true)
		routesToPool(t, p)
	})
	t.Run("API server down", func(t *testing.T) { apiServerDown(t, env, c, p) })
}

// routesToPool checks that requests go to the pool's pods, routed by
// their telemetry.
func routesToPool(t *testing.T, p *picker) {
	t.Helper()
	m := p.MetricsAddr().String()
	for range 5 {
		routed0 := metric(t, m, decisions, map[string]string{"result": "routed"})
		r := p.route(t)
		if r.first() != "10.9.0.1:8000" && r.first() != "10.9.0.2:8000" {
			t.Fatalf("routed %+v, want pod a or b", r)
		}
		if metric(t, m, decisions, map[string]string{"result": "routed"}) != routed0+1 {
			t.Fatal("the decision was not counted routed (by fresh telemetry)")
		}
	}
}

// noEndpoint waits for the picker to turn unready, then checks the
// gateway gets the protocol's 503, counted as no_endpoint, and that the
// picker is still running.
func noEndpoint(t *testing.T, p *picker) {
	t.Helper()
	p.waitReadiness(t, false)
	m := p.MetricsAddr().String()
	before := metric(t, m, decisions, map[string]string{"result": "no_endpoint"})
	for range 3 {
		if r := p.route(t); r.status != http.StatusServiceUnavailable {
			t.Fatalf("with no endpoint the picker answered %+v, want 503", r)
		}
	}
	if d := metric(t, m, decisions, map[string]string{"result": "no_endpoint"}) - before; d != 3 {
		t.Errorf("no_endpoint decisions grew by %v, want 3", d)
	}
	p.running(t)
}

// apiServerDown stops kube-apiserver (etcd stays) and checks the picker
// keeps its last view of the pool: it stays ready and keeps routing to
// the pods while its watches fail and retry.
func apiServerDown(t *testing.T, env *envtest.Environment, c *cluster, p *picker) {
	// Stop reports an error when it had to kill the process; what counts
	// is that nothing answers any more.
	stopErr := env.ControlPlane.APIServer.Stop()
	if _, err := c.cs.Discovery().ServerVersion(); err == nil {
		t.Fatalf("kube-apiserver still answers after Stop (%v)", stopErr)
	}
	// client-go retries a refused watch quietly (no error reaches the
	// source's handler, nothing is logged), so there is no condition to
	// wait for: route and check readiness without pause for a window that
	// spans several of its retries (its backoff starts at 800 ms).
	window := time.Now().Add(watchRetries)
	for rounds := 0; rounds < 3 || time.Now().Before(window); rounds++ {
		routesToPool(t, p)
		if ready, consistent := p.readiness(t); !ready || !consistent {
			t.Fatalf("with the API server down: ready %v (consistent %v), want ready", ready, consistent)
		}
	}
	p.running(t)
}

// cluster makes the pool's objects in one namespace.
type cluster struct {
	cs  kubernetes.Interface
	dyn dynamic.Interface
	ns  string
}

func newCluster(t *testing.T, cfg *rest.Config, ns string) *cluster {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{cs: cs, dyn: dyn, ns: ns}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// No controller-manager runs to create the ServiceAccount pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account: %v", err)
	}
	return c
}

func (c *cluster) pools() dynamic.ResourceInterface {
	return c.dyn.Resource(poolResource).Namespace(c.ns)
}

// createPool creates the InferencePool "llm" selecting key=value, port 8000.
func (c *cluster) createPool(t *testing.T, key, value string) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
		"metadata": map[string]any{"name": "llm", "namespace": c.ns},
		"spec": map[string]any{
			"selector":    map[string]any{"matchLabels": map[string]any{key: value}},
			"targetPorts": []any{map[string]any{"number": int64(8000)}},
			"endpointPickerRef": map[string]any{
				"name": "headroom-picker", "port": map[string]any{"number": int64(9002)},
			},
		},
	}}
	if _, err := c.pools().Create(t.Context(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create InferencePool: %v", err)
	}
}

// setSelector makes the pool select key=value.
func (c *cluster) setSelector(t *testing.T, key, value string) {
	t.Helper()
	u, err := c.pools().Get(t.Context(), "llm", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get InferencePool: %v", err)
	}
	if err := unstructured.SetNestedStringMap(u.Object, map[string]string{key: value}, "spec", "selector", "matchLabels"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.pools().Update(t.Context(), u, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update InferencePool: %v", err)
	}
}

// createPod creates a pod labelled app=llm and plays the kubelet: running,
// ready, with ip.
func (c *cluster) createPod(t *testing.T, name, ip string) {
	t.Helper()
	pods := c.cs.CoreV1().Pods(c.ns)
	pod, err := pods.Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "llm"}},
		Spec: corev1.PodSpec{NodeName: "gpu-1",
			Containers: []corev1.Container{{Name: "model-server", Image: "example.invalid/vllm:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
	pod.Status.Phase, pod.Status.PodIP, pod.Status.PodIPs = corev1.PodRunning, ip, []corev1.PodIP{{IP: ip}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if _, err := pods.UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("set status of pod %s: %v", name, err)
	}
}
