package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/peer"
	authnv1 "k8s.io/api/authentication/v1"
)

// These tests play a pod that sends the ingest made-up tokens: none of
// them may cost the API server a review unless it could pass one, they
// may not hold up real agents, and they may not push real agents out of
// the cache.

// claimsToken builds an RS256-headed token with a made-up signature.
func claimsToken(claims map[string]any) string {
	enc := base64.RawURLEncoding.EncodeToString
	b, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
}

// agentClaims are a pod-bound agent token's claims, valid until 2100.
func agentClaims(jti string) map[string]any {
	return map[string]any{
		"iss": "https://kubernetes.default.svc.cluster.local", "aud": []string{DefaultAudience},
		"sub": agentUser, "jti": jti, "exp": 4102444800, "iat": 1_700_000_000, "nbf": 1_700_000_000,
		"kubernetes.io": map[string]any{"namespace": "headroom", "pod": map[string]any{"name": "agent-1", "uid": "u"},
			"node": map[string]any{"name": "gpu-1", "uid": "n"}},
	}
}

// fromPeer is withToken on a stream from the given peer address.
func fromPeer(token, addr string) context.Context {
	ip, port, _ := net.SplitHostPort(addr)
	var p int
	fmt.Sscan(port, &p)
	return peer.NewContext(withToken(token), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: p}})
}

func TestTokenReviewPrefilterSpendsNoReview(t *testing.T) {
	t.Parallel()
	enc := base64.RawURLEncoding.EncodeToString
	tests := []struct {
		name  string
		token func() string
		want  error
	}{
		{"alg none", func() string {
			b, _ := json.Marshal(agentClaims("x"))
			return enc([]byte(`{"alg":"none"}`)) + "." + enc(b) + "." + enc([]byte("sig"))
		}, ErrUnauthenticated},
		{"no signature", func() string {
			b, _ := json.Marshal(agentClaims("x"))
			return enc([]byte(`{"alg":"RS256"}`)) + "." + enc(b) + "."
		}, ErrUnauthenticated},
		{"payload not JSON", func() string { return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte("nope")) + ".c2ln" }, ErrUnauthenticated},
		{"no exp", func() string { c := agentClaims("x"); delete(c, "exp"); return claimsToken(c) }, ErrUnauthenticated},
		{"expired", func() string { c := agentClaims("x"); c["exp"] = 1_700_000_001; return claimsToken(c) }, ErrUnauthenticated},
		{"not valid yet", func() string { c := agentClaims("x"); c["nbf"] = 4_000_000_000; return claimsToken(c) }, ErrUnauthenticated},
		{"no issuer", func() string { c := agentClaims("x"); delete(c, "iss"); return claimsToken(c) }, ErrUnauthenticated},
		{"issuer with a newline", func() string { c := agentClaims("x"); c["iss"] = "https://a\nb"; return claimsToken(c) }, ErrUnauthenticated},
		{"other audience", func() string { c := agentClaims("x"); c["aud"] = []string{"api"}; return claimsToken(c) }, ErrUnauthenticated},
		{"no audience", func() string { c := agentClaims("x"); delete(c, "aud"); return claimsToken(c) }, ErrUnauthenticated},
		{"not a service account", func() string { c := agentClaims("x"); c["sub"] = "alice"; return claimsToken(c) }, ErrPermissionDenied},
		{"service account not allowed", func() string {
			c := agentClaims("x")
			c["sub"] = "system:serviceaccount:default:builder"
			return claimsToken(c)
		}, ErrPermissionDenied},
		{"bound to a node, not a pod", func() string {
			c := agentClaims("x")
			c["kubernetes.io"] = map[string]any{"namespace": "headroom", "node": map[string]any{"name": "gpu-1"}}
			return claimsToken(c)
		}, ErrPermissionDenied},
		{"not bound at all", func() string { c := agentClaims("x"); delete(c, "kubernetes.io"); return claimsToken(c) }, ErrPermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "gpu-1"), nil }}
			tr, _ := newTestTokenReview(t, fr, func(o *TokenReviewOptions) { o.ServiceAccounts = []string{"headroom/agent"} })
			_, err := tr.Authenticate(withToken(tc.token()))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if fr.count() != 0 {
				t.Fatalf("%d TokenReviews spent on a token that cannot pass one", fr.count())
			}
		})
	}
	// A token aud as a single string is fine (RFC 7519 allows both).
	fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "gpu-1"), nil }}
	tr, _ := newTestTokenReview(t, fr, nil)
	c := agentClaims("x")
	c["aud"] = DefaultAudience
	if id, err := tr.Authenticate(withToken(claimsToken(c))); err != nil || id.Node != "gpu-1" {
		t.Fatalf("aud as a string: %+v, %v", id, err)
	}
}

// With every review slot taken by slow reviews, the next token is refused
// at once (the agent retries), not queued behind them.
func TestTokenReviewFailsFastWhenSlotsFull(t *testing.T) {
	t.Parallel()
	fr := &fakeReviewer{
		answer:  func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "gpu-1"), nil },
		started: make(chan struct{}, maxReviewsInFlight+1),
		release: make(chan struct{}),
	}
	tr, _ := newTestTokenReview(t, fr, func(o *TokenReviewOptions) { o.Timeout = time.Hour })
	for i := range maxReviewsInFlight {
		go func() {
			_, _ = tr.Authenticate(fromPeer(claimsToken(agentClaims(fmt.Sprint("slow", i))), fmt.Sprintf("10.1.0.%d:1", i+1)))
		}()
	}
	for range maxReviewsInFlight {
		<-fr.started
	}
	done := make(chan error, 1)
	go func() {
		_, err := tr.Authenticate(fromPeer(claimsToken(agentClaims("one-more")), "10.2.0.1:1"))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting for a review slot after 10 s: a flood of slow reviews holds real agents up")
	}
	close(fr.release)
	if n := fr.count(); n != maxReviewsInFlight {
		t.Fatalf("%d reviews, want %d", n, maxReviewsInFlight)
	}
}

// One peer spending reviews on made-up tokens is refused before it takes
// a slot; another peer is not.
func TestTokenReviewPeerBudget(t *testing.T) {
	t.Parallel()
	fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) {
		return authnv1.TokenReviewStatus{Error: "invalid bearer token"}, nil
	}}
	tr, _ := newTestTokenReview(t, fr, nil) // 5 at once, 1 a second
	var refused int
	for i := range 20 {
		_, err := tr.Authenticate(fromPeer(claimsToken(agentClaims(fmt.Sprint("fake", i))), "10.9.9.9:4000"))
		if errors.Is(err, ErrUnavailable) {
			refused++
		} else if !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("token %d: err %v", i, err)
		}
	}
	if fr.count() != 5 || refused != 15 {
		t.Fatalf("%d reviews, %d refused for 20 tokens from one peer; want 5 and 15", fr.count(), refused)
	}
	if _, err := tr.Authenticate(fromPeer(claimsToken(agentClaims("other")), "10.9.9.10:4000")); !errors.Is(err, ErrUnauthenticated) || fr.count() != 6 {
		t.Fatalf("another peer: err %v after %d reviews; want a review and its verdict", err, fr.count())
	}
}

// Rejected tokens do not push an accepted one out of the cache: a flood
// of made-up tokens must not cost every real agent a review on its next
// connection.
func TestTokenReviewRejectionsKeepAcceptedCached(t *testing.T) {
	t.Parallel()
	genuine := claimsToken(agentClaims("real"))
	fr := &fakeReviewer{answer: func(token string) (authnv1.TokenReviewStatus, error) {
		if token == genuine {
			return podBound(agentUser, "gpu-1"), nil
		}
		return authnv1.TokenReviewStatus{Error: "invalid bearer token"}, nil
	}}
	tr, _ := newTestTokenReview(t, fr, func(o *TokenReviewOptions) { o.CacheSize = 4 })
	if _, err := tr.Authenticate(fromPeer(genuine, "10.0.0.1:1")); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		// From many peers, so no per-peer budget stops them first.
		_, err := tr.Authenticate(fromPeer(claimsToken(agentClaims(fmt.Sprint("fake", i))), fmt.Sprintf("10.3.%d.%d:1", i/250, i%250+1)))
		if !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("fake %d: %v", i, err)
		}
	}
	before := fr.count()
	if _, err := tr.Authenticate(fromPeer(genuine, "10.0.0.1:1")); err != nil || fr.count() != before {
		t.Fatalf("the real agent's token: err %v, %d more reviews; want it still cached", err, fr.count()-before)
	}
}

// With --auth.token.issuers, a token of another issuer costs no review.
func TestTokenReviewIssuers(t *testing.T) {
	t.Parallel()
	fr := &fakeReviewer{answer: func(string) (authnv1.TokenReviewStatus, error) { return podBound(agentUser, "gpu-1"), nil }}
	tr, _ := newTestTokenReview(t, fr, func(o *TokenReviewOptions) { o.Issuers = []string{"https://kubernetes.default.svc.cluster.local"} })
	other := agentClaims("x")
	other["iss"] = "https://attacker.example"
	if _, err := tr.Authenticate(withToken(claimsToken(other))); !errors.Is(err, ErrUnauthenticated) || fr.count() != 0 {
		t.Fatalf("other issuer: err %v after %d reviews", err, fr.count())
	}
	if _, err := tr.Authenticate(withToken(claimsToken(agentClaims("y")))); err != nil || fr.count() != 1 {
		t.Fatalf("the cluster's issuer: err %v after %d reviews", err, fr.count())
	}
}

// BenchmarkMadeUpToken is what a made-up token costs the picker when the
// pre-filter refuses it (here: another audience), and what one that
// passes it costs when its peer is over its review budget: neither reaches
// the API server. The baseline is a real agent's token found in the cache
// (a reconnection).
func BenchmarkMadeUpToken(b *testing.B) {
	genuine := claimsToken(agentClaims("genuine"))
	fr := &fakeReviewer{answer: func(token string) (authnv1.TokenReviewStatus, error) {
		if token == genuine {
			return podBound(agentUser, "gpu-1"), nil
		}
		return authnv1.TokenReviewStatus{}, nil
	}}
	o := DefaultTokenReviewOptions()
	o.PeerReviewRate = 1e-6 // no refill while the benchmark runs
	tr, err := NewTokenReview(fr, o, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := tr.Authenticate(fromPeer(genuine, "10.0.0.1:1")); err != nil {
		b.Fatal(err)
	}
	wrongAud := agentClaims("x")
	wrongAud["aud"] = []string{"api"}
	for _, tc := range []struct {
		name  string
		token func(i int) string
	}{
		{"baseline: a real agent's cached token", func(int) string { return genuine }},
		{"refused by the pre-filter", func(int) string { return claimsToken(wrongAud) }},
		{"over the peer's budget", func(i int) string { return claimsToken(agentClaims(fmt.Sprint(i))) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tokens := make([]context.Context, 1024)
			for i := range tokens {
				tokens[i] = fromPeer(tc.token(i), "10.7.7.7:1")
			}
			i := 0
			for b.Loop() {
				_, _ = tr.Authenticate(tokens[i%len(tokens)])
				i++
			}
		})
	}
	if n := fr.count(); n > 1+o.PeerReviewBurst {
		b.Fatalf("%d reviews", n)
	}
}
