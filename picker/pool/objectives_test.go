package pool

import (
	"context"
	"testing"

	"github.com/headroom-dev/headroom/internal/testutil"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func (f *fixture) createObjective(t *testing.T, name, pool string, priority int64) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
		"metadata": map[string]any{"name": name, "namespace": f.ns},
		"spec":     map[string]any{"priority": priority, "poolRef": map[string]any{"name": pool}},
	}}
	if _, err := f.dyn.Resource(ObjectiveResource).Namespace(f.ns).Create(t.Context(), u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create objective %s: %v", name, err)
	}
}

func testObjectives(t *testing.T, f *fixture) {
	o, err := NewObjectives(f.cfg, f.ns, "llm", testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { o.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	f.createObjective(t, "batch", "llm", -1)
	f.createObjective(t, "chat", "llm", 2)
	f.createObjective(t, "other-pool-batch", "other", -5)
	waitFor(t, "batch sheddable", func() bool { return o.Sheddable("batch") })
	for _, name := range []string{"chat", "other-pool-batch", "unknown", ""} {
		if o.Sheddable(name) {
			t.Errorf("%q is sheddable", name)
		}
	}
	if err := f.dyn.Resource(ObjectiveResource).Namespace(f.ns).Delete(t.Context(), "batch", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "deleted objective no longer sheddable", func() bool { return !o.Sheddable("batch") })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, eventually, what, cond)
}
