package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// These tests use a fake reviewer to check the authenticator's own logic
// (verdicts, caching, coalescing); tokenreview_test.go checks it against a
// real kube-apiserver.

const agentUser = "system:serviceaccount:headroom:agent"

// fakeReviewer answers every review from answer and counts the calls.
type fakeReviewer struct {
	mu      sync.Mutex
	calls   int
	tokens  []string
	answer  func(token string) (authnv1.TokenReviewStatus, error)
	started chan struct{} // when set, signalled as each call starts
	release chan struct{} // when set, each call waits for it
}

func (f *fakeReviewer) Create(ctx context.Context, tr *authnv1.TokenReview, _ metav1.CreateOptions) (*authnv1.TokenReview, error) {
	f.mu.Lock()
	f.calls++
	f.tokens = append(f.tokens, tr.Spec.Token)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st, err := f.answer(tr.Spec.Token)
	if err != nil {
		return nil, err
	}
	return &authnv1.TokenReview{Status: st}, nil
}

func (f *fakeReviewer) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func podBound(user, node string) authnv1.TokenReviewStatus {
	return authnv1.TokenReviewStatus{
		Authenticated: true,
		Audiences:     []string{DefaultAudience},
		User: authnv1.UserInfo{Username: user, Extra: map[string]authnv1.ExtraValue{
			ExtraNodeName: {node}, ExtraPodName: {"agent-x"},
		}},
	}
}

func withToken(token string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
}

func newTestTokenReview(t *testing.T, r TokenReviewer, mutate func(*TokenReviewOptions)) (*TokenReview, *testutil.Clock) {
	t.Helper()
	opts := DefaultTokenReviewOptions()
	if mutate != nil {
		mutate(&opts)
	}
	tr, err := NewTokenReview(r, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := testutil.NewClock(time.Unix(1_800_000_000, 0))
	tr.now = clock.Now
	return tr, clock
}

func TestTokenReviewVerdict(t *testing.T) {
	t.Parallel()
	extra := func(kv ...string) map[string]authnv1.ExtraValue {
		m := map[string]authnv1.ExtraValue{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = authnv1.ExtraValue{kv[i+1]}
		}
		return m
	}
	tests := []struct {
		name     string
		status   authnv1.TokenReviewStatus
		wantErr  error
		wantNode string
	}{
		{"pod-bound", podBound(agentUser, "gpu-1"), nil, "gpu-1"},
		{"not authenticated", authnv1.TokenReviewStatus{Error: "invalid bearer token"}, ErrUnauthenticated, ""},
		{"other audience", authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{"api"},
			User: authnv1.UserInfo{Username: agentUser, Extra: extra(ExtraNodeName, "n", ExtraPodName, "p")}}, ErrUnauthenticated, ""},
		{"no audiences", authnv1.TokenReviewStatus{Authenticated: true,
			User: authnv1.UserInfo{Username: agentUser, Extra: extra(ExtraNodeName, "n", ExtraPodName, "p")}}, ErrUnauthenticated, ""},
		{"not a service account", podBound("alice", "gpu-1"), ErrPermissionDenied, ""},
		{"service account not allowed", podBound("system:serviceaccount:default:builder", "gpu-1"), ErrPermissionDenied, ""},
		{"no node", authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{DefaultAudience},
			User: authnv1.UserInfo{Username: agentUser, Extra: extra(ExtraPodName, "p")}}, ErrPermissionDenied, ""},
		{"node-bound, no pod", authnv1.TokenReviewStatus{Authenticated: true, Audiences: []string{DefaultAudience},
			User: authnv1.UserInfo{Username: agentUser, Extra: extra(ExtraNodeName, "n")}}, ErrPermissionDenied, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return tc.status, nil }}
			tr, _ := newTestTokenReview(t, fr, func(o *TokenReviewOptions) { o.ServiceAccounts = []string{"headroom/agent"} })
			id, err := tr.Authenticate(withToken(tok("tok")))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if id.Node != tc.wantNode {
				t.Errorf("node = %q, want %q", id.Node, tc.wantNode)
			}
			if err == nil && (id.Method != "token" || id.Subject != agentUser+" pod=headroom/agent-x") {
				t.Errorf("identity = %+v", id)
			}
		})
	}
}

func TestTokenReviewBearer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		md   metadata.MD
		want error
	}{
		{"none", nil, ErrUnauthenticated},
		{"basic", metadata.Pairs("authorization", "Basic dXNlcjpwdw=="), ErrUnauthenticated},
		{"empty bearer", metadata.Pairs("authorization", "Bearer "), ErrUnauthenticated},
		{"two values", metadata.Pairs("authorization", "Bearer a", "authorization", "Bearer b"), ErrUnauthenticated},
		{"too long", metadata.Pairs("authorization", "Bearer "+string(make([]byte, maxTokenBytes+1))), ErrUnauthenticated},
		{"lower-case scheme", metadata.Pairs("authorization", "bearer "+tok("tok")), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "n"), nil }}
			tr, _ := newTestTokenReview(t, fr, nil)
			_, err := tr.Authenticate(metadata.NewIncomingContext(context.Background(), tc.md))
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.want == nil]; fr.count() != want {
				t.Errorf("%d reviews, want %d", fr.count(), want)
			}
		})
	}
}

// saClaims are the claims of a pod-bound ServiceAccount token of the
// agent's account, for the picker's audience; jti tells tokens apart.
func saClaims(jti string, exp time.Time) map[string]any {
	return map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local", "aud": []string{DefaultAudience},
		"sub": agentUser, "jti": jti, "exp": exp.Unix(), "iat": 1_700_000_000,
		"kubernetes.io": map[string]any{"namespace": "headroom", "pod": map[string]any{"name": "agent-x", "uid": "u"}},
	}
}

// jwt builds a JWT-shaped token (RS256 header, a made-up signature) with
// the given claims.
func jwt(claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return enc([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc(payload) + "." + enc([]byte("not a real signature"))
}

// jwtWithExp is a ServiceAccount-shaped token with the given exp claim.
func jwtWithExp(exp time.Time) string { return jwt(saClaims("exp", exp)) }

// tok is a ServiceAccount-shaped token named by jti that expires in 2100.
func tok(jti string) string { return jwt(saClaims(jti, time.Unix(4102444800, 0))) }

// expOf reads a test token's exp claim.
func expOf(token string) (time.Time, bool) {
	c, err := parseClaims(token)
	if err != nil {
		return time.Time{}, false
	}
	return unixClaim(c.Expiry)
}

// Tokens that cannot be ServiceAccount tokens cost the API server nothing.
func TestTokenReviewRefusesWithoutReview(t *testing.T) {
	t.Parallel()
	fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "n"), nil }}
	tr, clock := newTestTokenReview(t, fr, nil)
	for name, token := range map[string]string{
		"not a JWT":     "opaque",
		"no exp claim":  "e30.e30.sig",
		"expired token": jwtWithExp(clock.Now().Add(-time.Second)),
	} {
		if _, err := tr.Authenticate(withToken(token)); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: err %v, want ErrUnauthenticated", name, err)
		}
	}
	if fr.count() != 0 {
		t.Fatalf("%d reviews, want none", fr.count())
	}
}

func TestTokenReviewCacheLifetimes(t *testing.T) {
	t.Parallel()
	base := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name   string
		token  string
		answer authnv1.TokenReviewStatus
		err    error
		reuse  time.Duration // the result is reused for this long, not beyond
	}{
		{"accepted, far exp: CacheTTL", tok("far"), podBound(agentUser, "n"), nil, time.Minute},
		{"accepted, exp sooner: exp", jwtWithExp(base.Add(20 * time.Second)), podBound(agentUser, "n"), nil, 20 * time.Second},
		{"accepted, exp later: CacheTTL", jwtWithExp(base.Add(time.Hour)), podBound(agentUser, "n"), nil, time.Minute},
		{"rejected: NegativeTTL", tok("bad"), authnv1.TokenReviewStatus{}, nil, 10 * time.Second},
		{"API error: not cached", tok("tok"), authnv1.TokenReviewStatus{}, errors.New("connection refused"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return tc.answer, tc.err }}
			tr, clock := newTestTokenReview(t, fr, nil)
			_, first := tr.Authenticate(withToken(tc.token))
			if tc.err != nil && !errors.Is(first, ErrUnavailable) {
				t.Fatalf("API error gave %v, want ErrUnavailable", first)
			}
			if tc.reuse > 0 {
				clock.Add(tc.reuse - time.Second)
				_, again := tr.Authenticate(withToken(tc.token))
				if fr.count() != 1 || fmt.Sprint(again) != fmt.Sprint(first) {
					t.Fatalf("before expiry: %d reviews, err %v (first %v)", fr.count(), again, first)
				}
				clock.Add(time.Second)
			}
			_, after := tr.Authenticate(withToken(tc.token))
			if exp, ok := expOf(tc.token); ok && !exp.After(clock.Now()) {
				// Past its exp the token is refused without asking.
				if fr.count() != 1 || !errors.Is(after, ErrUnauthenticated) {
					t.Fatalf("after exp: %d reviews, err %v; want 1 and ErrUnauthenticated", fr.count(), after)
				}
				return
			}
			if fr.count() != 2 {
				t.Fatalf("after expiry: %d reviews, want 2", fr.count())
			}
			for _, tok := range fr.tokens {
				if tok != tc.token {
					t.Errorf("reviewed %q, want the token", tok)
				}
			}
		})
	}
}

func TestTokenReviewCacheEvicts(t *testing.T) {
	t.Parallel()
	fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "n"), nil }}
	tr, _ := newTestTokenReview(t, fr, func(o *TokenReviewOptions) { o.CacheSize = 2 })
	for _, name := range []string{"a", "b", "a", "c", "a", "b"} {
		if _, err := tr.Authenticate(withToken(tok(name))); err != nil {
			t.Fatal(err)
		}
	}
	// a, b reviewed; a hit; c evicts b (least recently used); a hit; b again.
	if accepted, _ := tr.cache.len(); fr.count() != 4 || accepted != 2 {
		t.Fatalf("%d reviews, %d cached; want 4 and 2", fr.count(), accepted)
	}
}

func TestTokenReviewCoalesces(t *testing.T) {
	t.Parallel()
	fr := &fakeReviewer{
		answer:  func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "gpu-7"), nil },
		started: make(chan struct{}, 10),
		release: make(chan struct{}),
	}
	tr, _ := newTestTokenReview(t, fr, nil)
	const callers = 8
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			id, err := tr.Authenticate(withToken(tok("shared")))
			if err == nil && id.Node != "gpu-7" {
				err = fmt.Errorf("node %q", id.Node)
			}
			errs <- err
		})
	}
	<-fr.started
	// Wait until every caller has joined the one review in flight.
	for joined := 0; joined < callers; runtime.Gosched() {
		tr.cache.mu.Lock()
		if f := tr.cache.inflight[tokenKey(tok("shared"))]; f != nil {
			joined = f.waiters
		}
		tr.cache.mu.Unlock()
	}
	close(fr.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if fr.count() != 1 {
		t.Fatalf("%d reviews for %d concurrent callers, want 1", fr.count(), callers)
	}
}

func TestTokenReviewCallerGivesUp(t *testing.T) {
	t.Parallel()
	fr := &fakeReviewer{
		answer:  func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "n"), nil },
		started: make(chan struct{}, 1),
		release: make(chan struct{}),
	}
	tr, _ := newTestTokenReview(t, fr, nil)
	ctx, cancel := context.WithCancel(withToken(tok("slow")))
	done := make(chan error)
	go func() { _, err := tr.Authenticate(ctx); done <- err }()
	<-fr.started
	cancel()
	if err := <-done; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want ErrUnavailable wrapping context.Canceled", err)
	}
	// The review itself was not cancelled: its result is cached for the
	// next caller, which joins or finds it without a second review.
	close(fr.release)
	if _, err := tr.Authenticate(withToken(tok("slow"))); err != nil || fr.count() != 1 {
		t.Fatalf("err %v after %d reviews, want nil after 1", err, fr.count())
	}
}

func TestTokenReviewOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*TokenReviewOptions)
		ok     bool
	}{
		{"defaults", func(*TokenReviewOptions) {}, true},
		{"short SA", func(o *TokenReviewOptions) { o.ServiceAccounts = []string{"headroom/agent"} }, true},
		{"full SA", func(o *TokenReviewOptions) { o.ServiceAccounts = []string{agentUser} }, true},
		{"bad SA", func(o *TokenReviewOptions) { o.ServiceAccounts = []string{"agent"} }, false},
		{"SA with extra part", func(o *TokenReviewOptions) { o.ServiceAccounts = []string{"a/b/c"} }, false},
		{"no audience", func(o *TokenReviewOptions) { o.Audiences = nil }, false},
		{"empty audience", func(o *TokenReviewOptions) { o.Audiences = []string{""} }, false},
		{"zero cache", func(o *TokenReviewOptions) { o.CacheSize = 0 }, false},
		{"zero timeout", func(o *TokenReviewOptions) { o.Timeout = 0 }, false},
		{"negative TTL", func(o *TokenReviewOptions) { o.NegativeTTL = -time.Second }, false},
		{"issuers", func(o *TokenReviewOptions) { o.Issuers = []string{"https://kubernetes.default.svc"} }, true},
		{"empty issuer", func(o *TokenReviewOptions) { o.Issuers = []string{""} }, false},
		{"zero negative cache", func(o *TokenReviewOptions) { o.NegativeCacheSize = 0 }, false},
		{"zero peer rate", func(o *TokenReviewOptions) { o.PeerReviewRate = 0 }, false},
		{"zero peer burst", func(o *TokenReviewOptions) { o.PeerReviewBurst = 0 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultTokenReviewOptions()
			tc.mutate(&o)
			if err := o.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
