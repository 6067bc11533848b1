// Package satoken sends a projected ServiceAccount token as gRPC per-RPC
// credentials ("authorization: Bearer <token>"), the agent's half of the
// picker's TokenReview authentication.
//
// The kubelet rotates a projected token well before it expires by writing
// a new file (an atomic symlink swap in the volume), so the token is read
// again whenever the file changes: the file is checked at most once per
// RecheckInterval, and read only when its identity, size or mtime moved.
package satoken

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// DefaultPath is where the agent's DaemonSet mounts its projected token.
const DefaultPath = "/var/run/secrets/headroom/token"

// DefaultRecheckInterval is the default least time between two checks of
// the token file.
const DefaultRecheckInterval = 5 * time.Second

// Options configures a Source.
type Options struct {
	// Path is the token file (default DefaultPath).
	Path string
	// RecheckInterval is the least time between two stats of the file;
	// zero checks on every call.
	RecheckInterval time.Duration
}

// Source reads the token file and implements credentials.PerRPCCredentials.
type Source struct {
	opts Options
	now  func() time.Time

	mu      sync.Mutex
	token   string
	info    os.FileInfo // of the file token was read from
	checked time.Time   // last stat; zero: never
}

var _ credentials.PerRPCCredentials = (*Source)(nil)

// New returns a Source; it does not touch the file until first used.
func New(opts Options) *Source {
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	return &Source{opts: opts, now: time.Now}
}

// Token returns the current token, reading the file again when it has
// changed. When a re-read fails after a successful one, the last token is
// kept (the kubelet replaces the file atomically, so a failure is a
// passing glitch, and the picker rejects a token that really expired).
func (s *Source) Token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.token != "" && now.Sub(s.checked) < s.opts.RecheckInterval {
		return s.token, nil
	}
	s.checked = now
	err := s.refreshLocked()
	if err != nil && s.token == "" {
		return "", err
	}
	return s.token, nil
}

// refreshLocked reads the file when it differs from the one last read.
func (s *Source) refreshLocked() error {
	info, err := os.Stat(s.opts.Path)
	if err != nil {
		return fmt.Errorf("service account token: %w", err)
	}
	if s.token != "" && sameFile(s.info, info) {
		return nil
	}
	b, err := os.ReadFile(s.opts.Path)
	if err != nil {
		return fmt.Errorf("service account token: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return fmt.Errorf("service account token %s: %w", s.opts.Path, errEmpty)
	}
	s.token, s.info = token, info
	return nil
}

var errEmpty = errors.New("empty file")

func sameFile(a, b os.FileInfo) bool {
	return a != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// GetRequestMetadata implements credentials.PerRPCCredentials. It refuses
// to send the token over a connection without privacy and integrity.
func (s *Source) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if ri, ok := credentials.RequestInfoFromContext(ctx); ok {
		if err := credentials.CheckSecurityLevel(ri.AuthInfo, credentials.PrivacyAndIntegrity); err != nil {
			return nil, fmt.Errorf("service account token needs a secure connection: %w", err)
		}
	}
	token, err := s.Token()
	if err != nil {
		return nil, err
	}
	return map[string]string{"authorization": "Bearer " + token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: the
// token is a credential and is never sent in the clear.
func (s *Source) RequireTransportSecurity() bool { return true }
