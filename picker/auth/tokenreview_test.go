package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testenv"

	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestTokenReviewAPIServer checks the TokenReview authenticator against a
// real kube-apiserver and etcd (controller-runtime envtest), with real
// tokens from TokenRequest. One control plane serves every case: starting
// it costs seconds. The binaries come from `make envtest-assets`; when they
// are missing the test FAILS and says so instead of skipping, so that a
// machine without them cannot pass this security test by accident. Only
// `go test -short` leaves it out.
//
// The cases run in order; the last one stops the API server.
func TestTokenReviewAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver and etcd (make envtest-assets); left out by -short")
	}
	f := newTokenFixture(t)
	t.Run("what the API server says about a pod-bound token", f.apiServerExtras)
	t.Run("valid pod-bound token", f.acceptsPodBound)
	t.Run("second check of the same token is cached", f.caches)
	t.Run("issuer allowlist", f.issuers)
	t.Run("bad tokens", f.rejectsBadTokens)
	t.Run("token not bound to a pod", f.rejectsUnbound)
	t.Run("token bound to the node, not a pod", f.rejectsNodeBound)
	t.Run("service account not allowed", f.rejectsOtherAccount)
	t.Run("token of a deleted pod", f.rejectsDeletedPod)
	t.Run("the picker's TokenReview client", f.ownClientAgrees)
	t.Run("API server stopped", f.unavailableWhenStopped)
}

// tokenFixture is the control plane and the objects the cases share.
type tokenFixture struct {
	env        *envtest.Environment
	c          *testenv.Cluster
	node       *corev1.Node
	agentPod   *corev1.Pod
	agentToken string
	reviews    *countingReviewer  // counts the reviews of shared
	opts       TokenReviewOptions // allows headroom/agent only
	shared     *TokenReview       // with opts, cache kept across cases
}

func newTokenFixture(t *testing.T) *tokenFixture {
	t.Helper()
	env, cfg := testenv.Start(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &testenv.Cluster{CS: cs, NS: "headroom", Node: "gpu-node-1"}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.NS}}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f := &tokenFixture{env: env, c: c, node: c.CreateNode(t, c.Node)}
	c.CreateServiceAccount(t, "agent")
	c.CreateServiceAccount(t, "intruder")
	f.agentPod = c.CreatePod(t, "agent-1", "agent")
	f.agentToken = c.Token(t, "agent", DefaultAudience, testenv.PodRef(f.agentPod))
	f.reviews = &countingReviewer{TokenReviewer: cs.AuthenticationV1().TokenReviews()}
	f.opts = DefaultTokenReviewOptions()
	f.opts.ServiceAccounts = []string{"headroom/agent"}
	f.shared = mustTokenReview(t, f.reviews, f.opts)
	return f
}

// authn authenticates a stream that carries token ("": no metadata).
func authn(a *TokenReview, token string) (Identity, error) {
	ctx := context.Background()
	if token != "" {
		ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", "Bearer "+token))
	}
	return a.Authenticate(ctx)
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	t.Logf("err: %v", err)
}

func (f *tokenFixture) apiServerExtras(t *testing.T) {
	st, err := rawReview(t.Context(), f.c, f.agentToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("authenticated=%v user=%q audiences=%v extra=%v", st.Authenticated, st.User.Username, st.Audiences, st.User.Extra)
	if got := st.User.Extra[ExtraNodeName]; !slices.Equal(got, []string{f.c.Node}) {
		t.Fatalf("extra %s = %v, want [%s]", ExtraNodeName, got, f.c.Node)
	}
	if got := st.User.Extra[ExtraPodName]; !slices.Equal(got, []string{f.agentPod.Name}) {
		t.Fatalf("extra %s = %v, want [%s]", ExtraPodName, got, f.agentPod.Name)
	}
}

func (f *tokenFixture) acceptsPodBound(t *testing.T) {
	id, err := authn(f.shared, f.agentToken)
	if err != nil {
		t.Fatal(err)
	}
	// The token was requested for an hour: the stream ends when it expires.
	if time.Until(id.Expires) < 50*time.Minute || time.Until(id.Expires) > time.Hour {
		t.Fatalf("expires %v, want the token's exp, about an hour from now", id.Expires)
	}
	id.Expires = time.Time{}
	want := Identity{Node: f.c.Node, Subject: "system:serviceaccount:headroom:agent pod=headroom/agent-1", Method: "token"}
	if id != want {
		t.Fatalf("identity = %+v, want %+v", id, want)
	}
}

func (f *tokenFixture) caches(t *testing.T) {
	before := f.reviews.count()
	if _, err := authn(f.shared, f.agentToken); err != nil {
		t.Fatal(err)
	}
	if n := f.reviews.count() - before; n != 0 {
		t.Fatalf("%d more TokenReviews, want 0", n)
	}
}

// A real token's unverified claims pass the pre-filter with the API
// server's own issuer allowed, and cost no review with another one.
func (f *tokenFixture) issuers(t *testing.T) {
	c, err := parseClaims(f.agentToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("issuer %q, audiences %v, subject %q", c.Issuer, c.Audience, c.Subject)
	own := f.opts
	own.Issuers = []string{c.Issuer}
	if id, err := authn(mustTokenReview(t, f.reviews, own), f.agentToken); err != nil || id.Node != f.c.Node {
		t.Fatalf("with the API server's issuer allowed: %+v, %v", id, err)
	}
	other := f.opts
	other.Issuers = []string{"https://issuer.example"}
	before := f.reviews.count()
	_, err = authn(mustTokenReview(t, f.reviews, other), f.agentToken)
	wantErr(t, err, ErrUnauthenticated)
	if f.reviews.count() != before {
		t.Fatal("a token of an issuer not allowed was reviewed")
	}
}

func (f *tokenFixture) rejectsBadTokens(t *testing.T) {
	tests := []struct{ name, token string }{
		{"no token", ""},
		{"garbage", "not-a-token"},
		// A JWT of the right shape whose signature is not the API server's.
		{"forged signature", jwtWithExp(time.Now().Add(time.Hour))},
		{"wrong audience", f.c.Token(t, "agent", "some-other-service", testenv.PodRef(f.agentPod))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := authn(f.shared, tc.token)
			wantErr(t, err, ErrUnauthenticated)
		})
	}
}

func (f *tokenFixture) rejectsUnbound(t *testing.T) {
	_, err := authn(f.shared, f.c.Token(t, "agent", DefaultAudience, nil))
	wantErr(t, err, ErrPermissionDenied)
}

// Whoever may request the agent's tokens could mint a node-bound one for
// any node; a pod binding also needs a pod of the agent's service account
// on that node, so only pod-bound tokens speak for a node.
func (f *tokenFixture) rejectsNodeBound(t *testing.T) {
	ref := &authnv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: f.node.Name, UID: f.node.UID}
	token := f.c.Token(t, "agent", DefaultAudience, ref)
	st, err := rawReview(t.Context(), f.c, token)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node-bound: authenticated=%v extra=%v", st.Authenticated, st.User.Extra)
	_, err = authn(f.shared, token)
	wantErr(t, err, ErrPermissionDenied)
}

func (f *tokenFixture) rejectsOtherAccount(t *testing.T) {
	pod := f.c.CreatePod(t, "intruder-1", "intruder")
	token := f.c.Token(t, "intruder", DefaultAudience, testenv.PodRef(pod))
	_, err := authn(f.shared, token)
	wantErr(t, err, ErrPermissionDenied)
	// The same token passes an authenticator that allows any account.
	id, err := authn(mustTokenReview(t, f.reviews, DefaultTokenReviewOptions()), token)
	if err != nil || id.Node != f.c.Node {
		t.Fatalf("without an allow list: %+v, %v", id, err)
	}
}

// TokenRequest will not issue a token that lives less than 10 minutes, so
// an expired token cannot be made in a test. Deleting the bound pod is what
// really invalidates a pod-bound token early, so that is the case here.
func (f *tokenFixture) rejectsDeletedPod(t *testing.T) {
	pod := f.c.CreatePod(t, "agent-doomed", "agent")
	token := f.c.Token(t, "agent", DefaultAudience, testenv.PodRef(pod))
	zero := int64(0)
	if err := f.c.CS.CoreV1().Pods(f.c.NS).Delete(t.Context(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	// The API server sees the deletion through its informers and caches
	// review results for a few seconds: wait until a direct review rejects
	// the token.
	waitRejected(t, f.c, token)
	_, err := authn(mustTokenReview(t, f.reviews, f.opts), token)
	wantErr(t, err, ErrUnauthenticated)
}

func (f *tokenFixture) unavailableWhenStopped(t *testing.T) {
	if err := f.env.ControlPlane.APIServer.Stop(); err != nil {
		t.Fatal(err)
	}
	fresh := &countingReviewer{TokenReviewer: f.c.CS.AuthenticationV1().TokenReviews()}
	o := f.opts
	o.Timeout = 3 * time.Second
	a := mustTokenReview(t, fresh, o)
	for i := range 2 {
		_, err := authn(a, f.agentToken)
		if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrPermissionDenied) {
			t.Fatalf("call %d: err = %v, want ErrUnavailable only", i, err)
		}
		t.Logf("err: %v", err)
	}
	if fresh.count() != 2 {
		t.Fatalf("%d TokenReviews for 2 calls: a transient failure was cached", fresh.count())
	}
}

func mustTokenReview(t *testing.T, r TokenReviewer, opts TokenReviewOptions) *TokenReview {
	t.Helper()
	a, err := NewTokenReview(r, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// waitRejected polls a direct TokenReview until the API server rejects
// token, or fails the test after a minute.
func waitRejected(t *testing.T, c *testenv.Cluster, token string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for {
		st, err := rawReview(ctx, c, token)
		if err == nil && !st.Authenticated {
			t.Logf("rejected after pod deletion: %q", st.Error)
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("API server still accepts the token of a deleted pod: %+v, %v", st, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
