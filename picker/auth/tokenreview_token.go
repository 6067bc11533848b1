package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
)

// maxTokenBytes bounds the bearer token accepted (a projected token is
// about 1 KiB); larger ones are refused before any hashing or review.
const maxTokenBytes = 16 << 10

// maxIssuerBytes bounds the iss claim.
const maxIssuerBytes = 1024

// clockSkew is how far ahead of the picker's clock a token's nbf or iat
// may be (the API server's clock may run ahead).
const clockSkew = time.Minute

// tokenHash identifies a token in the cache without keeping it.
type tokenHash [sha256.Size]byte

func tokenKey(token string) tokenHash { return sha256.Sum256([]byte(token)) }

// bearerToken reads "authorization: Bearer <token>" from the incoming
// metadata. gRPC lower-cases metadata keys; the scheme is matched without
// regard to case (RFC 9110).
func bearerToken(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	switch {
	case len(vals) == 0:
		return "", fmt.Errorf("no authorization metadata: %w", ErrUnauthenticated)
	case len(vals) > 1:
		return "", fmt.Errorf("%d authorization values: %w", len(vals), ErrUnauthenticated)
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
		return "", fmt.Errorf("authorization is not a bearer token: %w", ErrUnauthenticated)
	}
	if len(token) > maxTokenBytes {
		return "", fmt.Errorf("bearer token longer than %d bytes: %w", maxTokenBytes, ErrUnauthenticated)
	}
	return token, nil
}

// claims are the parts of a ServiceAccount token's payload the picker
// reads before any review. They are not verified: they only decide
// whether a token is worth a TokenReview, and how long an accepted one is
// cached (the API server has verified it by then).
type claims struct {
	Issuer   string       `json:"iss"`
	Subject  string       `json:"sub"`
	Audience audience     `json:"aud"`
	Expiry   *json.Number `json:"exp"`
	NotBef   *json.Number `json:"nbf"`
	Issued   *json.Number `json:"iat"`
	K8s      *struct {
		Pod *struct {
			Name string `json:"name"`
		} `json:"pod"`
	} `json:"kubernetes.io"`
}

// audience is the aud claim: a string or a list of strings (RFC 7519).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(bytes.TrimSpace(b), []byte("[")) {
		var l []string
		err := json.Unmarshal(b, &l)
		*a = l
		return err
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*a = audience{s}
	return nil
}

// prefilter refuses, without a TokenReview, a token that cannot pass one:
// not a signed JWT, expired or not yet valid, of an issuer not allowed,
// for none of the audiences, of a subject that is not an allowed
// ServiceAccount, or not bound to a pod. A made-up token that gets through
// costs a review, but only within the per-peer rate and the review slots.
// It returns the token's expiry.
func (t *TokenReview) prefilter(token string, now time.Time) (time.Time, error) {
	c, err := parseClaims(token)
	if err != nil {
		return time.Time{}, fmt.Errorf("bearer token is not a ServiceAccount JWT (%v): %w", err, ErrUnauthenticated)
	}
	exp, ok := unixClaim(c.Expiry)
	switch {
	case !ok:
		return time.Time{}, fmt.Errorf("token has no exp claim: %w", ErrUnauthenticated)
	case !exp.After(now):
		return time.Time{}, fmt.Errorf("token expired at %s: %w", exp.UTC().Format(time.RFC3339), ErrUnauthenticated)
	}
	for _, at := range []*json.Number{c.NotBef, c.Issued} {
		if ts, ok := unixClaim(at); ok && ts.After(now.Add(clockSkew)) {
			return time.Time{}, fmt.Errorf("token not valid before %s: %w", ts.UTC().Format(time.RFC3339), ErrUnauthenticated)
		}
	}
	if c.Issuer == "" || len(c.Issuer) > maxIssuerBytes || strings.ContainsFunc(c.Issuer, isControl) {
		return time.Time{}, fmt.Errorf("token has no usable iss claim: %w", ErrUnauthenticated)
	}
	if len(t.opts.Issuers) > 0 && !slices.Contains(t.opts.Issuers, c.Issuer) {
		return time.Time{}, fmt.Errorf("token issuer %q is none of %v: %w", cut(c.Issuer), t.opts.Issuers, ErrUnauthenticated)
	}
	if !slices.ContainsFunc(t.opts.Audiences, func(a string) bool { return slices.Contains(c.Audience, a) }) {
		return time.Time{}, fmt.Errorf("token audiences include none of %v: %w", t.opts.Audiences, ErrUnauthenticated)
	}
	if !strings.HasPrefix(c.Subject, saUserPrefix) {
		return time.Time{}, fmt.Errorf("token subject %q is not a service account: %w", cut(c.Subject), ErrPermissionDenied)
	}
	if len(t.allowed) > 0 && !t.allowed[c.Subject] {
		return time.Time{}, fmt.Errorf("service account %q may not send reports: %w", cut(c.Subject), ErrPermissionDenied)
	}
	if c.K8s == nil || c.K8s.Pod == nil || c.K8s.Pod.Name == "" {
		return time.Time{}, fmt.Errorf("token of %q is not bound to a pod: %w", cut(c.Subject), ErrPermissionDenied)
	}
	return exp, nil
}

// parseClaims checks a JWS compact serialisation's shape (three base64url
// parts, a header naming a signing algorithm, a signature) and decodes
// its payload's claims.
func parseClaims(token string) (claims, error) {
	var c claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] == "" {
		return c, fmt.Errorf("not three dot-separated parts with a signature")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodePart(parts[0], &header); err != nil {
		return c, fmt.Errorf("header: %w", err)
	}
	if header.Alg == "" || strings.EqualFold(header.Alg, "none") {
		return c, fmt.Errorf("unsigned (alg %q)", header.Alg)
	}
	if _, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return c, fmt.Errorf("signature is not base64url")
	}
	if err := decodePart(parts[1], &c); err != nil {
		return c, fmt.Errorf("payload: %w", err)
	}
	return c, nil
}

func decodePart(part string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(part, "="))
	if err != nil {
		return fmt.Errorf("not base64url")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("not a JSON object")
	}
	return nil
}

// unixClaim reads a NumericDate claim.
func unixClaim(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	secs, err := n.Float64()
	if err != nil || secs < 0 || secs > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0), true
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// cut shortens a claim for an error message.
func cut(s string) string {
	if len(s) <= 64 {
		return s
	}
	return s[:64] + "…"
}
