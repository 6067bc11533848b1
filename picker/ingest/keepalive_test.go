package ingest

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// An agent's quiet connection pings the ingest (the agents ping every
// 30 s; gRPC lets a client ping every 10 s at most, used here to keep the
// test short). A server built with GRPCOptions keeps the connection;
// gRPC's default policy (pings no more often than every 5 minutes) counts
// a strike for each ping after the first and answers the fourth with
// GOAWAY "too_many_pings", which drops the connection about 40 s in.
func TestQuietAgentConnectionSurvivesPings(t *testing.T) {
	if testing.Short() {
		t.Skip("waits through five keepalive pings (50 s)")
	}
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(GRPCOptions(0)...)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	conn.Connect()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			t.Fatalf("never connected: %s", s)
		}
	}
	quiet, cancelQuiet := context.WithTimeout(t.Context(), 50*time.Second)
	defer cancelQuiet()
	if conn.WaitForStateChange(quiet, connectivity.Ready) {
		t.Fatalf("the quiet connection left READY for %s while pinging every 10 s", conn.GetState())
	}
}
