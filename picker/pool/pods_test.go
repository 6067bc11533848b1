package pool

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func testPod(name, ip string, ready bool, mods ...func(*corev1.Pod)) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "x"}, ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}},
		Spec:       corev1.PodSpec{NodeName: "node-" + name, Containers: []corev1.Container{{Name: "c", Image: "i"}}},
		Status: corev1.PodStatus{PodIP: ip, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: status, Reason: "r"},
		}},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func TestEndpointsOf(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	pods := []any{
		testPod("b", "10.0.0.10", true),
		testPod("a", "10.0.0.9", true),
		testPod("unready", "10.0.0.3", false),
		testPod("no-ip", "", true),
		testPod("bad-ip", "not-an-ip", true),
		testPod("terminating", "10.0.0.4", true, func(p *corev1.Pod) { p.DeletionTimestamp = &now }),
		testPod("no-condition", "10.0.0.5", true, func(p *corev1.Pod) { p.Status.Conditions = nil }),
		testPod("host-net-twin", "10.0.0.9", true), // same IP as "a": a keeps it
	}
	got := endpointsOf(pods, []int{8001, 8000})
	want := []string{"10.0.0.9:8000", "10.0.0.9:8001", "10.0.0.10:8000", "10.0.0.10:8001"}
	if a := addresses(got); !slices.Equal(a, want) {
		t.Fatalf("got %q, want %q", a, want)
	}
	if e := got[0]; e != (Endpoint{Namespace: "ns", Name: "a", IP: "10.0.0.9", Port: 8000, Ready: true, Node: "node-a", UID: "uid-a"}) {
		t.Errorf("first endpoint = %+v", e)
	}
	if eps := endpointsOf(pods, nil); len(eps) != 0 {
		t.Errorf("no ports: got %v", eps)
	}
}

func TestSlimPod(t *testing.T) {
	t.Parallel()
	now := metav1.Now()
	full := testPod("a", "10.0.0.1", true, func(p *corev1.Pod) { p.DeletionTimestamp = &now; p.ResourceVersion = "7" })
	obj, err := slimPod(full)
	if err != nil {
		t.Fatal(err)
	}
	slim := obj.(*corev1.Pod)
	if stateOf(slim) != stateOf(full) || slim.Name != "a" || slim.Namespace != "ns" || slim.ResourceVersion != "7" {
		t.Errorf("slim pod lost state: %+v", slim)
	}
	if slim.Labels != nil || slim.ManagedFields != nil || len(slim.Spec.Containers) != 0 || len(slim.Status.Conditions) != 1 {
		t.Errorf("slim pod kept too much: %+v", slim)
	}
	tomb := cacheTombstone{}
	if obj, _ := slimPod(tomb); obj != any(tomb) {
		t.Errorf("non-pod changed: %v", obj)
	}
}

type cacheTombstone struct{}

func TestPublisher(t *testing.T) {
	t.Parallel()
	p := newPublisher()
	if p.Endpoints() != nil {
		t.Error("new publisher has endpoints")
	}
	eps := []Endpoint{{IP: "10.0.0.1", Port: 1, Ready: true}}
	if !p.publish(eps) {
		t.Error("first publish: no change")
	}
	if p.publish(slices.Clone(eps)) {
		t.Error("same endpoints: reported a change")
	}
	select {
	case <-p.Updated():
	default:
		t.Fatal("change not signalled")
	}
	select {
	case <-p.Updated():
		t.Error("signalled for a non-change")
	default:
	}
	if !p.publish(nil) || len(p.Endpoints()) != 0 {
		t.Error("publish(nil): want a change to empty")
	}
}
