package auth

import (
	"context"
	"fmt"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// MTLS takes the node name from the verified client certificate's Common
// Name. The gRPC server's TLS config must require and verify client
// certificates (tls.RequireAndVerifyClientCert) against the agents' CA;
// this only reads what the handshake proved.
type MTLS struct{}

// Authenticate implements Authenticator.
func (MTLS) Authenticate(ctx context.Context) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Identity{}, fmt.Errorf("no peer: %w", ErrUnauthenticated)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, fmt.Errorf("not a TLS connection: %w", ErrUnauthenticated)
	}
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return Identity{}, fmt.Errorf("no verified client certificate: %w", ErrUnauthenticated)
	}
	leaf := chains[0][0]
	cn := leaf.Subject.CommonName
	if !telemetryv1.ValidNodeName(cn) {
		return Identity{}, fmt.Errorf("client certificate common name %q is not a node name: %w", cn, ErrPermissionDenied)
	}
	return Identity{Node: cn, Subject: "cn=" + cn, Method: "mtls", Expires: leaf.NotAfter}, nil
}
