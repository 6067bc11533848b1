package ingest

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/headroom-dev/headroom/internal/testpki"
	"github.com/headroom-dev/headroom/picker/auth"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// serve starts an ingest server on loopback and returns it and its address.
func serve(t *testing.T, authn auth.Authenticator, opts ...grpc.ServerOption) (*Server, string) {
	t.Helper()
	srv := NewServer(NewStore(3, nil), authn, "picker-test", testutil.Logger())
	g := grpc.NewServer(append(GRPCOptions(64<<10), opts...)...)
	telemetryv1.RegisterTelemetryServiceServer(g, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return srv, ln.Addr().String()
}

func dialInsecure() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
}

func dial(t *testing.T, addr string, opts ...grpc.DialOption) telemetryv1.TelemetryServiceClient {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return telemetryv1.NewTelemetryServiceClient(conn)
}

// mtlsPair returns server options requiring client certificates from ca,
// and dial options presenting a certificate with common name cn.
func mtlsPair(t *testing.T, ca *testpki.CA, cn string) ([]grpc.ServerOption, []grpc.DialOption) {
	srv := &tls.Config{
		Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1")},
		ClientCAs:    ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13,
	}
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	if cn != "" {
		cli.Certificates = []tls.Certificate{ca.Client(t, cn)}
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(srv))},
		[]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cli))}
}

func report(node string, seq uint64) *telemetryv1.NodeReport {
	kv := 0.25
	return &telemetryv1.NodeReport{
		Node: node, AgentInstance: "a", Sequence: seq,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Second),
		Gpus: []*telemetryv1.GPU{{Index: 0, Uuid: "GPU-0", MemoryTotalBytes: 80 << 30}},
		Pods: []*telemetryv1.Pod{{Namespace: "llm", Name: "vllm-0", Ip: "10.0.0.1", GpuUuids: []string{"GPU-0"},
			ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 2, KvCacheUsage: &kv}}},
	}
}

// exchange opens a stream, sends reports and returns the stream's outcome:
// nil after an ack and a clean close, or the status error.
func exchange(ctx context.Context, c telemetryv1.TelemetryServiceClient, reports ...*telemetryv1.NodeReport) error {
	st, err := c.Stream(ctx)
	if err != nil {
		return err
	}
	for _, r := range reports {
		if err := st.Send(r); err != nil {
			break // the status comes from Recv
		}
	}
	if _, err := st.Recv(); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	for {
		if _, err := st.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
