package pool

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	infv1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"
)

// podWatch is an informer on the pods one selector picks in the pool's
// namespace; a selector change replaces it.
type podWatch struct {
	selector string
	informer cache.SharedIndexInformer
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// watchPods starts an informer on the pods sel picks, filtered by the API
// server, keeping only what endpoints need.
func (k *Kubernetes) watchPods(ctx context.Context, sel labels.Selector) (*podWatch, error) {
	lw := k.podClient.listWatch(func(o *metav1.ListOptions) { o.LabelSelector = sel.String() })
	inf := newInformer(lw, &corev1.Pod{}, podResource, 0)
	if err := k.setUp(inf, "Pod", slimPod); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &podWatch{selector: sel.String(), informer: inf, cancel: cancel}
	w.wg.Go(func() { inf.RunWithContext(ctx) })
	w.wg.Go(func() { k.kickWhenSynced(ctx, inf) })
	return w, nil
}

// stopPods stops the pod informer, if any, and waits for it.
func (k *Kubernetes) stopPods() {
	if k.pods == nil {
		return
	}
	k.pods.cancel()
	k.pods.wg.Wait()
	k.pods = nil
}

// selectorOf turns the pool's matchLabels into a label selector. An empty
// one (the CRD forbids it) would pick every pod in the namespace, so it is
// refused.
func selectorOf(pool *infv1.InferencePool) (labels.Selector, error) {
	ml := pool.Spec.Selector.MatchLabels
	if len(ml) == 0 {
		return nil, errors.New("spec.selector.matchLabels is empty")
	}
	set := make(labels.Set, len(ml))
	for k, v := range ml {
		set[string(k)] = string(v)
	}
	sel, err := labels.ValidatedSelectorFromSet(set)
	if err != nil {
		return nil, fmt.Errorf("spec.selector.matchLabels: %w", err)
	}
	return sel, nil
}

func targetPorts(pool *infv1.InferencePool) []int {
	ports := make([]int, 0, len(pool.Spec.TargetPorts))
	for _, p := range pool.Spec.TargetPorts {
		ports = append(ports, int(p.Number))
	}
	return ports
}

// podState is what decides a pod's endpoints.
type podState struct {
	ip, node, uid string
	ready         bool
	terminating   bool
}

func stateOf(p *corev1.Pod) podState {
	s := podState{ip: p.Status.PodIP, node: p.Spec.NodeName, uid: string(p.UID), terminating: p.DeletionTimestamp != nil}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			s.ready = c.Status == corev1.ConditionTrue
		}
	}
	return s
}

// endpointsOf returns one endpoint per routable pod (an IP, Ready, not
// terminating) and port, sorted.
func endpointsOf(objs []any, ports []int) []Endpoint {
	var eps []Endpoint
	for _, obj := range objs {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			continue
		}
		s := stateOf(p)
		if !s.ready || s.terminating || s.ip == "" {
			continue
		}
		addr, err := netip.ParseAddr(s.ip)
		if err != nil {
			continue // not an IP: nothing to route to
		}
		for _, port := range ports {
			eps = append(eps, Endpoint{
				Namespace: p.Namespace, Name: p.Name,
				IP: addr.String(), Port: port, Ready: true, Node: s.node, UID: string(p.UID),
			})
		}
	}
	return sortEndpoints(eps)
}

// slimPod keeps only what stateOf and the cache keys read, so a pool of
// large pod specs costs little memory.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: already slim
	}
	s := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: p.Namespace, Name: p.Name, UID: p.UID,
			ResourceVersion: p.ResourceVersion, DeletionTimestamp: p.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{NodeName: p.Spec.NodeName},
		Status: corev1.PodStatus{PodIP: p.Status.PodIP},
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			s.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return s, nil
}
