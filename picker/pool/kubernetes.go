package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	infv1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"
)

// DefaultDebounce is how long the Kubernetes source lets changes gather
// before it recomputes the endpoints: a rollout's burst of pod updates
// becomes one update.
const DefaultDebounce = 50 * time.Millisecond

var poolResource = schema.GroupVersionResource{
	Group: infv1.GroupVersion.Group, Version: infv1.GroupVersion.Version, Resource: "inferencepools",
}

// Kubernetes watches one InferencePool and the pods its selector picks in
// the pool's namespace. It produces one endpoint per ready pod (an IP,
// condition Ready true, not terminating) and target port. A selector
// change on the pool is followed; while the pool is missing there are no
// endpoints.
//
// Synced turns true once the pool has been listed and, when it exists,
// the pods its selector picks; it stays true afterwards (after a selector
// change the previous endpoints stay until the new pods are listed).
//
// It needs get, list and watch on pods and on
// inferencepools.inference.networking.k8s.io in the pool's namespace. List
// and watch failures (a missing CRD, a missing RBAC rule) are logged and
// retried; until the first list succeeds, Synced stays false.
type Kubernetes struct {
	publisher
	namespace, name string
	logger          *slog.Logger
	podClient       *podClient
	dynamic         dynamic.Interface
	debounce        time.Duration
	kick            chan struct{} // capacity 1: something changed
	synced          atomic.Bool
	running         atomic.Bool

	// Owned by Run's goroutine.
	pool      cache.SharedIndexInformer
	pods      *podWatch // nil while no pool (or no selector)
	poolState poolState
}

var _ Runnable = (*Kubernetes)(nil)

type poolState int

const (
	poolUnknown poolState = iota
	poolPresent
	poolAbsent
)

// NewKubernetes returns a source for the InferencePool namespace/name,
// read through cfg. Call Run to start it.
func NewKubernetes(cfg *rest.Config, namespace, name string, logger *slog.Logger) (*Kubernetes, error) {
	if namespace == "" || name == "" {
		return nil, errors.New("pool: need the InferencePool's namespace and name")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pods, err := newPodClient(cfg, namespace)
	if err != nil {
		return nil, err
	}
	dyn, err := newDynamicClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("pool: dynamic client: %w", err)
	}
	return &Kubernetes{
		publisher: newPublisher(),
		namespace: namespace, name: name,
		logger:    logger.With("inferencepool", namespace+"/"+name),
		podClient: pods,
		dynamic:   dyn,
		debounce:  DefaultDebounce,
		kick:      make(chan struct{}, 1),
	}, nil
}

// Synced implements Source.
func (k *Kubernetes) Synced() bool { return k.synced.Load() }

// Run watches until ctx ends. It may run once.
func (k *Kubernetes) Run(ctx context.Context) error {
	if !k.running.CompareAndSwap(false, true) {
		return errors.New("pool: Run called twice")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer k.stopPods()

	k.pool = newDynamicInformer(k.dynamic, poolResource, k.namespace, 0, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.name).String()
	})
	if err := k.setUp(k.pool, "InferencePool", dropManagedFields); err != nil {
		return err
	}
	wg.Go(func() { k.pool.RunWithContext(ctx) })
	wg.Go(func() { k.kickWhenSynced(ctx, k.pool) })
	k.logger.Info("watching InferencePool")

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-k.kick:
		}
		// Let the burst gather; kicks meanwhile sit in the channel and are
		// dropped below, since reconcile reads the stores after them.
		t := time.NewTimer(k.debounce)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		select {
		case <-k.kick:
		default:
		}
		k.reconcile(ctx)
	}
}

// setUp gives an informer its transform, error logging and event handler.
func (k *Kubernetes) setUp(inf cache.SharedIndexInformer, kind string, transform cache.TransformFunc) error {
	if err := inf.SetTransform(transform); err != nil {
		return fmt.Errorf("pool: %s informer: %w", kind, err)
	}
	if err := inf.SetWatchErrorHandlerWithContext(k.watchError(kind)); err != nil {
		return fmt.Errorf("pool: %s informer: %w", kind, err)
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.poke() },
		UpdateFunc: func(o, n any) { k.pokeIfChanged(o, n) },
		DeleteFunc: func(any) { k.poke() },
	}
	if _, err := inf.AddEventHandler(h); err != nil {
		return fmt.Errorf("pool: %s informer: %w", kind, err)
	}
	return nil
}

// poke asks the loop to reconcile.
func (k *Kubernetes) poke() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// pokeIfChanged skips pod updates that leave the endpoints as they are
// (most status updates); pool updates always count.
func (k *Kubernetes) pokeIfChanged(old, cur any) {
	if op, ok := old.(*corev1.Pod); ok {
		if np, ok := cur.(*corev1.Pod); ok && stateOf(op) == stateOf(np) {
			return
		}
	}
	k.poke()
}

// kickWhenSynced pokes the loop once inf has its first full list, so a
// list with no objects (no events) is noticed too.
func (k *Kubernetes) kickWhenSynced(ctx context.Context, inf cache.SharedIndexInformer) {
	if cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		k.poke()
	}
}

// watchError logs list and watch failures (the informer retries them with
// backoff): a missing CRD or RBAC rule shows up here.
func (k *Kubernetes) watchError(kind string) cache.WatchErrorHandlerWithContext {
	return func(ctx context.Context, _ *cache.Reflector, err error) {
		switch {
		case ctx.Err() != nil, errors.Is(err, io.EOF):
			// Stopping, or a watch closed normally.
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
			k.logger.Debug("watch restarted", "kind", kind, "err", err)
		default:
			k.logger.Warn("list or watch failed; retrying", "kind", kind, "err", err)
		}
	}
}

// reconcile brings the pod watch and the endpoints in line with the pool.
func (k *Kubernetes) reconcile(ctx context.Context) {
	if !k.pool.HasSynced() {
		return
	}
	pool, err := k.currentPool()
	if err != nil {
		k.logger.Error("read InferencePool", "err", err)
		return
	}
	if pool == nil {
		k.poolGone()
		return
	}
	if k.poolState != poolPresent {
		k.logger.Info("InferencePool found")
		k.poolState = poolPresent
	}
	sel, err := selectorOf(pool)
	if err != nil {
		k.logger.Error("InferencePool selector unusable: no endpoints", "err", err)
		k.stopPods()
		k.publish(nil)
		k.synced.Store(true)
		return
	}
	if k.pods == nil || k.pods.selector != sel.String() {
		k.stopPods()
		k.logger.Info("watching pods", "selector", sel.String())
		if k.pods, err = k.watchPods(ctx, sel); err != nil {
			k.logger.Error("watch pods", "err", err)
			return
		}
	}
	if !k.pods.informer.HasSynced() {
		return // kicked again once listed
	}
	eps := endpointsOf(k.pods.informer.GetStore().List(), targetPorts(pool))
	if k.publish(eps) {
		k.logger.Debug("endpoints changed", "count", len(eps))
	}
	k.synced.Store(true)
}

// currentPool returns the pool from the informer's store, nil when absent.
func (k *Kubernetes) currentPool() (*infv1.InferencePool, error) {
	obj, ok, err := k.pool.GetStore().GetByKey(k.namespace + "/" + k.name)
	if err != nil || !ok {
		return nil, err
	}
	u, isU := obj.(*unstructured.Unstructured)
	if !isU {
		return nil, fmt.Errorf("unexpected %T in the InferencePool store", obj)
	}
	var pool infv1.InferencePool
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pool); err != nil {
		return nil, fmt.Errorf("decode InferencePool: %w", err)
	}
	return &pool, nil
}

// poolGone handles a missing pool: no pod watch, no endpoints.
func (k *Kubernetes) poolGone() {
	switch k.poolState {
	case poolPresent:
		k.logger.Warn("InferencePool deleted: no endpoints until it is recreated")
	case poolUnknown:
		k.logger.Warn("InferencePool not found: no endpoints until it is created")
	}
	k.poolState = poolAbsent
	k.stopPods()
	k.publish(nil)
	k.synced.Store(true)
}

// dropManagedFields keeps server-side-apply bookkeeping out of the cache.
func dropManagedFields(obj any) (any, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		u.SetManagedFields(nil)
	}
	return obj, nil
}
