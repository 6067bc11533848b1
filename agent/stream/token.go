package stream

import (
	"fmt"

	"google.golang.org/grpc/credentials"

	"github.com/headroom-dev/headroom/internal/satoken"
)

// tokenCredentials sends the projected ServiceAccount token at path as a
// bearer token, re-read when the kubelet rotates it. The file must be
// readable at start: a typo should fail the agent, not every stream.
func tokenCredentials(path string) (credentials.PerRPCCredentials, error) {
	s := satoken.New(satoken.Options{Path: path, RecheckInterval: satoken.DefaultRecheckInterval})
	if _, err := s.Token(); err != nil {
		return nil, fmt.Errorf("picker token: %w", err)
	}
	return s, nil
}
