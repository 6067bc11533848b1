package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
)

// maxTokenBytes bounds the bearer token accepted (a projected token is
// about 1 KiB); larger ones are refused before any hashing or review.
const maxTokenBytes = 16 << 10

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

// tokenExpiry reads the exp claim from a JWT's payload without verifying
// it. It only shortens how long an accepted token stays cached (the API
// server has verified the token by then), so trusting it is safe; a token
// that is not a JWT or has no exp yields ok == false.
func tokenExpiry(token string) (exp time.Time, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(secs), 0), true
}
