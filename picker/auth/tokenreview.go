package auth

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// ErrUnavailable means a token could not be checked right now: the API
// server was unreachable, timed out or refused the TokenReview itself (for
// example the picker lacks RBAC for tokenreviews). It is no verdict on the
// token and is never cached; the ingest server maps it to
// codes.Unavailable so the agent retries, where ErrUnauthenticated and
// ErrPermissionDenied are final for that token.
var ErrUnavailable = errors.New("authentication unavailable")

// Keys of the user extra that kube-apiserver sets for a token bound to a
// pod (TokenRequest boundObjectRef kind Pod) once that pod is scheduled.
const (
	ExtraNodeName = "authentication.kubernetes.io/node-name"
	ExtraPodName  = "authentication.kubernetes.io/pod-name"
)

// DefaultAudience is the audience the agent's projected token is minted for.
const DefaultAudience = "headroom-picker"

const saUserPrefix = "system:serviceaccount:"

// TokenReviewer creates TokenReviews. NewTokenReviewClient returns one;
// client-go's typed AuthenticationV1().TokenReviews() satisfies it too.
type TokenReviewer interface {
	Create(ctx context.Context, tr *authnv1.TokenReview, opts metav1.CreateOptions) (*authnv1.TokenReview, error)
}

// TokenReviewOptions configures a TokenReview authenticator.
type TokenReviewOptions struct {
	// Audiences the token must be valid for; the review must return at
	// least one of them.
	Audiences []string
	// ServiceAccounts, when not empty, are the only senders allowed, each
	// "namespace/name" or "system:serviceaccount:namespace:name".
	ServiceAccounts []string
	// Issuers, when not empty, are the only iss claims a token may carry
	// to be reviewed (the API server's --service-account-issuer values).
	Issuers []string
	// CacheTTL bounds how long a positive result is reused (never past the
	// token's exp claim). A token revoked meanwhile (its pod deleted)
	// stays accepted for at most this long.
	CacheTTL time.Duration
	// NegativeTTL is how long a rejection is reused.
	NegativeTTL time.Duration
	// CacheSize bounds the accepted tokens cached; NegativeCacheSize the
	// rejected ones, kept apart so rejections cannot evict acceptances.
	CacheSize, NegativeCacheSize int
	// Timeout bounds one TokenReview call.
	Timeout time.Duration
	// PeerReviewRate and PeerReviewBurst bound the TokenReviews one peer
	// address may cause (reviews a second, and at once); past them its
	// streams are refused UNAVAILABLE without a review.
	PeerReviewRate  float64
	PeerReviewBurst int
}

// DefaultTokenReviewOptions returns the defaults.
func DefaultTokenReviewOptions() TokenReviewOptions {
	return TokenReviewOptions{
		Audiences:         []string{DefaultAudience},
		CacheTTL:          time.Minute,
		NegativeTTL:       10 * time.Second,
		CacheSize:         4096,
		NegativeCacheSize: 1024,
		Timeout:           5 * time.Second,
		PeerReviewRate:    1,
		PeerReviewBurst:   5,
	}
}

// AddFlags registers the options under "auth.token.".
func (o *TokenReviewOptions) AddFlags(fs *flag.FlagSet) {
	fs.Func("auth.token.audiences", "comma-separated audiences the agent token must carry (default "+DefaultAudience+")",
		func(s string) error { o.Audiences = splitList(s); return nil })
	fs.Func("auth.token.service-accounts", "comma-separated namespace/name of the ServiceAccounts allowed to send reports (empty: any)",
		func(s string) error { o.ServiceAccounts = splitList(s); return nil })
	fs.Func("auth.token.issuers", "comma-separated iss claims a token may carry (the API server's --service-account-issuer; empty: any)",
		func(s string) error { o.Issuers = splitList(s); return nil })
	fs.DurationVar(&o.CacheTTL, "auth.token.cache-ttl", o.CacheTTL, "how long an accepted token is trusted without a new TokenReview")
	fs.DurationVar(&o.NegativeTTL, "auth.token.negative-cache-ttl", o.NegativeTTL, "how long a rejected token is remembered")
	fs.IntVar(&o.CacheSize, "auth.token.cache-size", o.CacheSize, "most accepted tokens kept")
	fs.IntVar(&o.NegativeCacheSize, "auth.token.negative-cache-size", o.NegativeCacheSize, "most rejected tokens kept (apart from the accepted ones)")
	fs.DurationVar(&o.Timeout, "auth.token.timeout", o.Timeout, "deadline of one TokenReview")
	fs.Float64Var(&o.PeerReviewRate, "auth.token.peer-review-rate", o.PeerReviewRate, "TokenReviews a second one peer address may cause; past it (and the burst) its streams are refused without a review")
	fs.IntVar(&o.PeerReviewBurst, "auth.token.peer-review-burst", o.PeerReviewBurst, "TokenReviews one peer address may cause at once")
}

// Validate checks the options.
func (o TokenReviewOptions) Validate() error {
	if len(o.Audiences) == 0 || slices.Contains(o.Audiences, "") {
		return errors.New("auth.token.audiences: need at least one non-empty audience")
	}
	for _, sa := range o.ServiceAccounts {
		if _, err := serviceAccountUser(sa); err != nil {
			return fmt.Errorf("auth.token.service-accounts: %w", err)
		}
	}
	if slices.Contains(o.Issuers, "") {
		return errors.New("auth.token.issuers: an issuer must not be empty")
	}
	switch {
	case o.CacheTTL < 0 || o.NegativeTTL < 0:
		return errors.New("auth.token cache TTLs must not be negative")
	case o.CacheSize < 1 || o.NegativeCacheSize < 1:
		return errors.New("auth.token.cache-size and auth.token.negative-cache-size must be at least 1")
	case o.Timeout <= 0:
		return errors.New("auth.token.timeout must be positive")
	case !(o.PeerReviewRate > 0) || o.PeerReviewBurst < 1:
		return errors.New("auth.token.peer-review-rate must be positive and auth.token.peer-review-burst at least 1")
	}
	return nil
}

// TokenReview authenticates a stream by the bearer token in its
// "authorization" metadata: a projected ServiceAccount token, bound to the
// agent's pod, that the Kubernetes API server verifies (TokenReview). The
// node is the one the bound pod is scheduled on, as the API server reports
// it; a token not bound to a scheduled pod cannot speak for any node.
//
// Results are cached by the token's SHA-256, never by the token itself;
// concurrent checks of one token share a single review. A token is
// reviewed only when its unverified claims could pass (prefilter), its
// peer has review budget left and a review slot is free at once:
// anything else costs the API server nothing.
type TokenReview struct {
	reviewer TokenReviewer
	opts     TokenReviewOptions
	allowed  map[string]bool // usernames; empty: any
	logger   *slog.Logger
	now      func() time.Time
	cache    *reviewCache
	peers    *peerLimits
	inflight chan struct{} // semaphore of TokenReview calls
}

// maxReviewsInFlight bounds concurrent TokenReview calls of one picker.
const maxReviewsInFlight = 16

// NewTokenReview returns a TokenReview authenticator. reviewer is usually
// NewTokenReviewClient's.
func NewTokenReview(reviewer TokenReviewer, opts TokenReviewOptions, logger *slog.Logger) (*TokenReview, error) {
	if reviewer == nil {
		return nil, errors.New("token review: nil reviewer")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := &TokenReview{
		reviewer: reviewer,
		opts:     opts,
		allowed:  map[string]bool{},
		logger:   logger.With("authenticator", "token"),
		now:      time.Now,
		cache:    newReviewCache(opts.CacheSize, opts.NegativeCacheSize),
		peers:    newPeerLimits(opts.PeerReviewRate, opts.PeerReviewBurst),
		inflight: make(chan struct{}, maxReviewsInFlight),
	}
	for _, sa := range opts.ServiceAccounts {
		user, _ := serviceAccountUser(sa) // validated above
		t.allowed[user] = true
	}
	return t, nil
}

// Authenticate implements Authenticator. Its errors wrap
// ErrUnauthenticated, ErrPermissionDenied or ErrUnavailable.
func (t *TokenReview) Authenticate(ctx context.Context) (Identity, error) {
	token, err := bearerToken(ctx)
	if err != nil {
		return Identity{}, err
	}
	exp, err := t.prefilter(token, t.now())
	if err != nil {
		return Identity{}, err
	}
	key := tokenKey(token)
	peerAddr := peerHost(ctx)
	admit := func() error {
		// Only a review that would start spends the peer's budget: a
		// cached result or a review in flight costs nothing.
		if !t.peers.allow(peerAddr, t.now()) {
			return fmt.Errorf("token review: peer %s is over its review budget (%g a second, burst %d): %w",
				peerAddr, t.opts.PeerReviewRate, t.opts.PeerReviewBurst, ErrUnavailable)
		}
		return nil
	}
	id, err := t.cache.do(ctx, key, t.now, admit, func() result {
		r := t.review(ctx, token)
		t.store(key, r, exp)
		return r
	})
	if err == nil {
		id.Expires = exp
	}
	return id, err
}

// store caches a finished review: rejections briefly, acceptances until
// min(CacheTTL, exp), transient failures not at all.
func (t *TokenReview) store(key tokenHash, r result, exp time.Time) {
	now := t.now()
	switch {
	case errors.Is(r.err, ErrUnavailable):
		return
	case r.err != nil:
		t.cache.put(key, r, now.Add(t.opts.NegativeTTL))
	default:
		until := now.Add(t.opts.CacheTTL)
		if exp.Before(until) {
			until = exp
		}
		t.cache.put(key, r, until)
	}
}

// review asks the API server about token and turns its answer into a
// result. It runs detached from the caller's cancellation (other callers
// may be waiting on it) but bounded by Timeout. It refuses at once, with
// ErrUnavailable, when every review slot is taken: a stream of made-up
// tokens (each peer within its budget, which Authenticate checks) must
// become neither a flood on the API server nor a queue that real agents
// wait behind.
func (t *TokenReview) review(ctx context.Context, token string) result {
	select {
	case t.inflight <- struct{}{}:
		defer func() { <-t.inflight }()
	default:
		return result{err: fmt.Errorf("token review: all %d review slots busy, retry: %w", maxReviewsInFlight, ErrUnavailable)}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.opts.Timeout)
	defer cancel()
	req := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: t.opts.Audiences}}
	resp, err := t.reviewer.Create(ctx, req, metav1.CreateOptions{})
	if err != nil {
		// The API server's error text never contains the token.
		t.logger.Warn("token review failed", "err", err)
		return result{err: fmt.Errorf("token review: %w: %w", ErrUnavailable, err)}
	}
	id, err := t.verdict(resp.Status)
	if err != nil {
		t.logger.Info("token rejected", "user", resp.Status.User.Username, "err", err)
		return result{err: err}
	}
	t.logger.Debug("token accepted", "subject", id.Subject, "node", id.Node)
	return result{id: id}
}

// verdict checks a TokenReview status against the options.
func (t *TokenReview) verdict(st authnv1.TokenReviewStatus) (Identity, error) {
	if !st.Authenticated {
		// st.Error is the API server's reason; it does not echo the token.
		return Identity{}, fmt.Errorf("token not authenticated (%s): %w", st.Error, ErrUnauthenticated)
	}
	if !slices.ContainsFunc(t.opts.Audiences, func(a string) bool { return slices.Contains(st.Audiences, a) }) {
		return Identity{}, fmt.Errorf("token audiences %v include none of %v: %w", st.Audiences, t.opts.Audiences, ErrUnauthenticated)
	}
	user := st.User.Username
	if !strings.HasPrefix(user, saUserPrefix) {
		return Identity{}, fmt.Errorf("%q is not a service account: %w", user, ErrPermissionDenied)
	}
	if len(t.allowed) > 0 && !t.allowed[user] {
		return Identity{}, fmt.Errorf("service account %q may not send reports: %w", user, ErrPermissionDenied)
	}
	node := firstExtra(st.User.Extra, ExtraNodeName)
	pod := firstExtra(st.User.Extra, ExtraPodName)
	if node == "" || pod == "" {
		return Identity{}, fmt.Errorf("token of %q is not bound to a pod on a node: %w", user, ErrPermissionDenied)
	}
	if !telemetryv1.ValidNodeName(node) {
		return Identity{}, fmt.Errorf("token of %q names node %q, not a node name: %w", user, node, ErrPermissionDenied)
	}
	ns, _, _ := strings.Cut(strings.TrimPrefix(user, saUserPrefix), ":")
	return Identity{Node: node, Subject: user + " pod=" + ns + "/" + pod, Method: "token"}, nil
}

func firstExtra(extra map[string]authnv1.ExtraValue, key string) string {
	if v := extra[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// serviceAccountUser turns "ns/name" or "system:serviceaccount:ns:name"
// into the latter.
func serviceAccountUser(s string) (string, error) {
	rest, full := strings.CutPrefix(s, saUserPrefix)
	sep := "/"
	if full {
		sep = ":"
	}
	ns, name, ok := strings.Cut(rest, sep)
	if !ok || ns == "" || name == "" || strings.ContainsAny(ns+name, ":/") {
		return "", fmt.Errorf("%q is neither namespace/name nor %snamespace:name", s, saUserPrefix)
	}
	return saUserPrefix + ns + ":" + name, nil
}

func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
