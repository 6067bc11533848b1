// Package auth decides which node a telemetry stream may speak for.
//
// The picker trusts a report only for the node its sender proved it runs
// on: a forged report must not be able to attract or divert traffic. An
// Authenticator turns the credentials of an incoming gRPC stream (its TLS
// peer and its metadata) into an Identity; the ingest server then refuses
// any report whose node differs from the identity's.
//
// Three methods exist: mTLS with the node name in the client certificate
// (standalone hosts), a projected ServiceAccount token verified by
// TokenReview (Kubernetes; see tokenreview.go), and an insecure mode for
// local runs that trusts the report's own node name and must only listen
// on loopback.
package auth

import (
	"context"
	"errors"
	"time"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Errors an Authenticator wraps; the ingest server maps them to gRPC codes.
var (
	// ErrUnauthenticated: no credentials, or credentials that do not verify.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: valid credentials that may not send reports.
	ErrPermissionDenied = errors.New("permission denied")
)

// Identity is what a peer proved about itself.
type Identity struct {
	// Node is the node the peer may report for.
	Node string
	// AnyNode lets the peer report for every node: the insecure mode only.
	// It is a separate bit so that no node name (not even "*") can mean it.
	AnyNode bool
	// Expires is when the credentials stop being valid (zero: never); the
	// ingest server ends a stream then, so the agent reconnects with its
	// rotated token or certificate.
	Expires time.Time
	// Subject names the peer in logs (certificate CN, ServiceAccount).
	Subject string
	// Method is "mtls", "token" or "insecure".
	Method string
}

// Allows reports whether the identity may send a report for node.
func (id Identity) Allows(node string) bool {
	return node != "" && (id.AnyNode || (telemetryv1.ValidNodeName(id.Node) && id.Node == node))
}

// Authenticator checks the credentials of an incoming stream. ctx is the
// stream's context: it carries the peer (grpc/peer) and the metadata.
type Authenticator interface {
	Authenticate(ctx context.Context) (Identity, error)
}

// Insecure trusts every peer for every node. Use it only on loopback.
type Insecure struct{}

// Authenticate implements Authenticator.
func (Insecure) Authenticate(context.Context) (Identity, error) {
	return Identity{AnyNode: true, Subject: "anonymous", Method: "insecure"}, nil
}
