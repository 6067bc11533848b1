package pool

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	infv1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"

	"github.com/headroom-dev/headroom/internal/testenv"
)

// eventually is how long a change may take to show: generous for a loaded
// CI machine; a passing run takes milliseconds per step.
const eventually = 30 * time.Second

// TestKubernetes runs the source against a real kube-apiserver and etcd
// with the InferencePool CRD installed. No kubelet runs: the tests set pod
// IPs and Ready conditions through the status subresource.
func TestKubernetes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd (envtest); runs without -short")
	}
	crd := filepath.Join(testenv.ModuleDir(t, "sigs.k8s.io/gateway-api-inference-extension"),
		"config", "crd", "bases", "inference.networking.k8s.io_inferencepools.yaml")
	_, cfg := testenv.Start(t, testenv.WithCRDs(crd, filepath.Join("testdata", "inferenceobjectives.yaml")))
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"pods follow readiness", testPodsFollowReadiness},
		{"two target ports", testTwoTargetPorts},
		{"selector change", testSelectorChange},
		{"pool deleted and recreated", testPoolDeletedAndRecreated},
		{"pool created after start", testPoolCreatedAfterStart},
		{"objectives decide what is sheddable", testObjectives},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fixture{cfg: cfg, cs: cs, dyn: dyn, ns: fmt.Sprintf("pool-test-%d", i)}
			f.createNamespace(t)
			tt.run(t, f)
		})
	}
}

func testPodsFollowReadiness(t *testing.T, f *fixture) {
	f.createPool(t, "llm", map[string]string{"app": "llm"}, 8000)
	src := f.start(t, "llm")
	waitSynced(t, src)
	f.createPod(t, "no-ip", "llm", "node-1")
	f.createPod(t, "other", "not-llm", "node-1")
	f.createPod(t, "a", "llm", "node-1")
	f.setStatus(t, "no-ip", "", true)
	f.setStatus(t, "other", "10.1.0.9", true)
	f.setStatus(t, "a", "10.1.0.1", true) // last: once it shows, the others were seen
	waitEndpoints(t, src, "a 10.1.0.1:8000")
	a, err := f.cs.CoreV1().Pods(f.ns).Get(t.Context(), "a", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e := src.Endpoints()[0]; e != (Endpoint{Namespace: f.ns, Name: "a", IP: "10.1.0.1", Port: 8000, Ready: true, Node: "node-1", UID: string(a.UID)}) {
		t.Errorf("endpoint = %+v", e)
	}

	f.createPod(t, "b", "llm", "node-2")
	f.setStatus(t, "b", "10.1.0.2", true)
	waitEndpoints(t, src, "a 10.1.0.1:8000", "b 10.1.0.2:8000")
	f.setStatus(t, "a", "10.1.0.1", false)
	waitEndpoints(t, src, "b 10.1.0.2:8000")
	f.setStatus(t, "no-ip", "10.1.0.3", true)
	waitEndpoints(t, src, "b 10.1.0.2:8000", "no-ip 10.1.0.3:8000")

	now := int64(0)
	f.deletePod(t, "no-ip", &now)
	waitEndpoints(t, src, "b 10.1.0.2:8000")
	f.deletePod(t, "b", nil) // scheduled, no kubelet: stays terminating
	waitEndpoints(t, src)
	p, err := f.cs.CoreV1().Pods(f.ns).Get(t.Context(), "b", metav1.GetOptions{})
	if err != nil || p.DeletionTimestamp == nil {
		t.Errorf("pod b should be terminating (deletion timestamp set), got %v, err %v", p.DeletionTimestamp, err)
	}
}

func testTwoTargetPorts(t *testing.T, f *fixture) {
	f.createPool(t, "llm", map[string]string{"app": "llm"}, 8001, 8000)
	src := f.start(t, "llm")
	for i, name := range []string{"b", "a"} {
		f.createPod(t, name, "llm", "node-1")
		f.setStatus(t, name, fmt.Sprintf("10.2.0.%d", 10-i), true)
	}
	waitEndpoints(t, src, "a 10.2.0.9:8000", "a 10.2.0.9:8001", "b 10.2.0.10:8000", "b 10.2.0.10:8001")
	f.updatePool(t, "llm", func(p *infv1.InferencePool) { p.Spec.TargetPorts = []infv1.Port{{Number: 9000}} })
	waitEndpoints(t, src, "a 10.2.0.9:9000", "b 10.2.0.10:9000")
}

func testSelectorChange(t *testing.T, f *fixture) {
	f.createPool(t, "llm", map[string]string{"app": "blue"}, 8000)
	src := f.start(t, "llm")
	f.createPod(t, "blue", "blue", "node-1")
	f.createPod(t, "green", "green", "node-1")
	f.setStatus(t, "green", "10.3.0.2", true)
	f.setStatus(t, "blue", "10.3.0.1", true)
	waitEndpoints(t, src, "blue 10.3.0.1:8000")
	f.updatePool(t, "llm", func(p *infv1.InferencePool) {
		p.Spec.Selector.MatchLabels = map[infv1.LabelKey]infv1.LabelValue{"app": "green"}
	})
	waitEndpoints(t, src, "green 10.3.0.2:8000")
	f.setStatus(t, "green", "10.3.0.2", false) // the new watch follows changes
	waitEndpoints(t, src)
}

func testPoolDeletedAndRecreated(t *testing.T, f *fixture) {
	f.createPool(t, "llm", map[string]string{"app": "llm"}, 8000)
	src := f.start(t, "llm")
	f.createPod(t, "a", "llm", "node-1")
	f.setStatus(t, "a", "10.4.0.1", true)
	waitEndpoints(t, src, "a 10.4.0.1:8000")
	if err := f.pools().Delete(t.Context(), "llm", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pool: %v", err)
	}
	waitEndpoints(t, src)
	if !src.Synced() {
		t.Error("not synced after the pool was deleted")
	}
	f.createPool(t, "llm", map[string]string{"app": "llm"}, 8080)
	waitEndpoints(t, src, "a 10.4.0.1:8080")
}

func testPoolCreatedAfterStart(t *testing.T, f *fixture) {
	src, err := NewKubernetes(f.cfg, f.ns, "later", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if src.Synced() {
		t.Error("synced before Run")
	}
	f.run(t, src)
	waitSynced(t, src) // an absent pool is a complete (empty) list
	if eps := src.Endpoints(); len(eps) != 0 {
		t.Errorf("endpoints without a pool: %v", eps)
	}
	f.createPod(t, "a", "llm", "node-1")
	f.setStatus(t, "a", "10.5.0.1", true)
	f.createPool(t, "other-pool", map[string]string{"app": "llm"}, 8000) // not ours
	f.createPool(t, "later", map[string]string{"app": "llm"}, 8000)
	waitEndpoints(t, src, "a 10.5.0.1:8000")
	if err := src.Run(t.Context()); err == nil {
		t.Error("second Run: nil error")
	}
}

// waitEndpoints waits until the source holds exactly want ("pod ip:port",
// in order), re-reading after each Updated signal: a change that is not
// signalled fails the test too.
func waitEndpoints(t *testing.T, src Source, want ...string) {
	t.Helper()
	deadline := time.After(eventually)
	for {
		var got []string
		for _, e := range src.Endpoints() {
			got = append(got, e.Name+" "+e.Address())
		}
		if slices.Equal(got, want) {
			return
		}
		select {
		case <-src.Updated():
		case <-deadline:
			t.Fatalf("endpoints = %q, want %q", got, want)
		}
	}
}

func waitSynced(t *testing.T, src Source) {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for !src.Synced() {
		if time.Now().After(deadline) {
			t.Fatal("source never synced")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fixture makes objects in one namespace of the shared API server.
type fixture struct {
	cfg *rest.Config
	cs  kubernetes.Interface
	dyn dynamic.Interface
	ns  string
}

func (f *fixture) createNamespace(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	if _, err := f.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: f.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	// No controller-manager creates the default ServiceAccount pods need.
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := f.cs.CoreV1().ServiceAccounts(f.ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account: %v", err)
	}
}

func (f *fixture) pools() dynamic.ResourceInterface {
	return f.dyn.Resource(poolResource).Namespace(f.ns)
}

func (f *fixture) createPool(t *testing.T, name string, match map[string]string, ports ...int32) {
	t.Helper()
	pool := &infv1.InferencePool{
		TypeMeta:   metav1.TypeMeta{APIVersion: infv1.GroupVersion.String(), Kind: "InferencePool"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns},
	}
	pool.Spec.Selector.MatchLabels = map[infv1.LabelKey]infv1.LabelValue{}
	for k, v := range match {
		pool.Spec.Selector.MatchLabels[infv1.LabelKey(k)] = infv1.LabelValue(v)
	}
	for _, p := range ports {
		pool.Spec.TargetPorts = append(pool.Spec.TargetPorts, infv1.Port{Number: infv1.PortNumber(p)})
	}
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pools().Create(t.Context(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pool %s: %v", name, err)
	}
}

func (f *fixture) updatePool(t *testing.T, name string, change func(*infv1.InferencePool)) {
	t.Helper()
	u, err := f.pools().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pool: %v", err)
	}
	var pool infv1.InferencePool
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pool); err != nil {
		t.Fatal(err)
	}
	change(&pool)
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pools().Update(t.Context(), &unstructured.Unstructured{Object: obj}, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update pool: %v", err)
	}
}

func (f *fixture) createPod(t *testing.T, name, app, node string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "model-server", Image: "example.invalid/vllm:1"}},
		},
	}
	if _, err := f.cs.CoreV1().Pods(f.ns).Create(t.Context(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
}

// setStatus plays the kubelet: the pod's IP and Ready condition.
func (f *fixture) setStatus(t *testing.T, name, ip string, ready bool) {
	t.Helper()
	pods := f.cs.CoreV1().Pods(f.ns)
	p, err := pods.Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p.Status.Phase = corev1.PodRunning
	p.Status.PodIP, p.Status.PodIPs = ip, nil
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	if _, err := pods.UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update status of pod %s: %v", name, err)
	}
}

func (f *fixture) deletePod(t *testing.T, name string, grace *int64) {
	t.Helper()
	if err := f.cs.CoreV1().Pods(f.ns).Delete(t.Context(), name, metav1.DeleteOptions{GracePeriodSeconds: grace}); err != nil {
		t.Fatalf("delete pod %s: %v", name, err)
	}
}

// start runs a source for the pool until the test ends.
func (f *fixture) start(t *testing.T, pool string) *Kubernetes {
	t.Helper()
	src, err := NewKubernetes(f.cfg, f.ns, pool, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, src)
	return src
}

// run runs src until the test ends and checks that Run returns cleanly.
func (f *fixture) run(t *testing.T, src *Kubernetes) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// testLogger logs through t, so a failing test shows the source's story.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}
