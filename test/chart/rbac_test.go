package chart

import (
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// access is one request a ServiceAccount may or may not make.
type access struct {
	verb, group, resource, namespace string
	allowed                          bool
}

// checkRBAC asks the API server (SubjectAccessReview) whether the
// release's ServiceAccounts can do what they need and nothing near it: the
// picker reads pools, objectives and pods in the pool's namespace and
// creates TokenReviews; the agent may do nothing.
func checkRBAC(t *testing.T, cfg *rest.Config, release, ns string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const gie, objectives = "inference.networking.k8s.io", "inference.networking.x-k8s.io"
	for sa, want := range map[string][]access{
		release + "-picker": {
			{"list", "", "pods", ns, true}, {"watch", "", "pods", ns, true}, {"get", "", "pods", ns, true},
			{"list", gie, "inferencepools", ns, true}, {"watch", gie, "inferencepools", ns, true},
			{"list", objectives, "inferenceobjectives", ns, true},
			{"create", "authentication.k8s.io", "tokenreviews", "", true},
			{"create", "", "pods", ns, false}, {"delete", gie, "inferencepools", ns, false},
			{"list", "", "secrets", ns, false}, {"list", "", "pods", "kube-system", false},
			{"list", "", "nodes", "", false}, {"create", "authentication.k8s.io", "tokenrequests", "", false},
		},
		release + "-agent": {
			{"list", "", "pods", ns, false}, {"create", "authentication.k8s.io", "tokenreviews", "", false},
			{"get", "", "secrets", ns, false},
		},
	} {
		for _, a := range want {
			review := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User:   "system:serviceaccount:" + ns + ":" + sa,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{
					Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace,
				},
			}}
			got, err := cs.AuthorizationV1().SubjectAccessReviews().Create(t.Context(), review, metav1.CreateOptions{})
			if err != nil {
				t.Fatalf("SubjectAccessReview: %v", err)
			}
			if got.Status.Allowed != a.allowed {
				t.Errorf("%s may %s %s.%s in %q: %v, want %v", sa, a.verb, a.resource, a.group, a.namespace, got.Status.Allowed, a.allowed)
			}
		}
	}
}
