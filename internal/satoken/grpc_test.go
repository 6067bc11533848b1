package satoken

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"github.com/headroom-dev/headroom/internal/testpki"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	ca := testpki.NewCA(t, "picker-ca")
	return ca.Server(t, "127.0.0.1"), ca.Pool()
}

// TestOverTLS sends the token through a real gRPC connection over TLS and
// checks what the server receives.
func TestOverTLS(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	seen := make(chan []string, 4)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			md, _ := metadata.FromIncomingContext(ctx)
			seen <- md.Get("authorization")
			return h(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	path := filepath.Join(t.TempDir(), "token")
	write(t, path, "tok-1\n", time.Unix(100, 0))
	src := New(Options{Path: path})
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13})),
		grpc.WithPerRPCCredentials(src))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := <-seen; len(got) != 1 || got[0] != "Bearer tok-1" {
		t.Fatalf("server saw authorization %q, want [Bearer tok-1]", got)
	}
}

// TestRefusesPlaintext: gRPC will not build a plaintext connection that
// would carry the token.
func TestRefusesPlaintext(t *testing.T) {
	t.Parallel()
	src := New(Options{Path: filepath.Join(t.TempDir(), "token")})
	if !src.RequireTransportSecurity() {
		t.Fatal("RequireTransportSecurity() = false")
	}
	conn, err := grpc.NewClient("127.0.0.1:1",
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(src))
	if err == nil {
		conn.Close()
		t.Fatal("plaintext client with the token credentials was allowed")
	}
}
