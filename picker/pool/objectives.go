package pool

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// ObjectiveResource is llm-d's InferenceObjective, which moved out of GIE:
// spec.priority (an integer, default 0) and spec.poolRef.name.
var ObjectiveResource = schema.GroupVersionResource{Group: "inference.networking.x-k8s.io", Version: "v1alpha2", Resource: "inferenceobjectives"}

// Objectives watches the InferenceObjectives of one pool and says which
// are sheddable (negative priority). Without the CRD, or before the first
// list, nothing is sheddable: shedding fails safe, towards serving.
type Objectives struct {
	dyn             dynamic.Interface
	namespace, pool string
	logger          *slog.Logger
	priorities      atomic.Pointer[map[string]int64]
	warned          sync.Once
}

// NewObjectives watches the objectives of pool namespace/pool through cfg.
func NewObjectives(cfg *rest.Config, namespace, pool string, logger *slog.Logger) (*Objectives, error) {
	dyn, err := newDynamicClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("objectives: dynamic client: %w", err)
	}
	o := &Objectives{dyn: dyn, namespace: namespace, pool: pool, logger: logger.With("inferencepool", namespace+"/"+pool)}
	o.priorities.Store(&map[string]int64{})
	return o, nil
}

// Sheddable reports whether requests naming objective
// (x-gateway-inference-objective) may be shed: its priority is negative.
func (o *Objectives) Sheddable(objective string) bool {
	return objective != "" && (*o.priorities.Load())[objective] < 0
}

// Run watches until ctx ends.
func (o *Objectives) Run(ctx context.Context) {
	inf := newDynamicInformer(o.dyn, ObjectiveResource, o.namespace, 10*time.Minute, nil)
	_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		o.warned.Do(func() {
			o.logger.Warn("cannot watch InferenceObjectives (is llm-d's CRD installed?); no request is sheddable by objective", "err", err)
		})
	})
	rebuild := func(any) { o.rebuild(inf.GetStore().List()) }
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: rebuild, DeleteFunc: rebuild, UpdateFunc: func(_, cur any) { rebuild(cur) },
	})
	inf.RunWithContext(ctx)
}

func (o *Objectives) rebuild(objs []any) {
	m := make(map[string]int64, len(objs))
	for _, obj := range objs {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			continue
		}
		if pool, _, _ := unstructured.NestedString(u.Object, "spec", "poolRef", "name"); pool != o.pool {
			continue
		}
		prio, _, _ := unstructured.NestedInt64(u.Object, "spec", "priority")
		m[u.GetName()] = prio
	}
	o.priorities.Store(&m)
}
