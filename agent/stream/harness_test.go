package stream

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/headroom-dev/headroom/internal/testpki"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/picker/auth"
	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

const pickerHost = "pickers.test"

// picker is one real ingest server with mTLS on a loopback address.
type picker struct {
	addr string
	srv  *ingest.Server
	g    *grpc.Server
}

// pki is the test's certificate authority and the files an agent needs.
type pki struct {
	ca     *testpki.CA
	caFile string
	dir    string
	server tls.Certificate
}

func newPKI(t *testing.T) *pki {
	ca := testpki.NewCA(t, "headroom-test")
	dir := t.TempDir()
	return &pki{ca: ca, caFile: ca.WriteCA(t, dir), dir: dir, server: ca.Server(t, pickerHost, "127.0.0.1", "127.0.0.2")}
}

// agentOptions returns streaming options for an agent of node.
func (p *pki) agentOptions(t *testing.T, node string, port int) Options {
	cert, key := testpki.WriteFiles(t, p.dir, node, p.ca.Client(t, node))
	o := DefaultOptions()
	o.Addresses = net.JoinHostPort(pickerHost, strconv.Itoa(port))
	o.CAFile, o.CertFile, o.KeyFile = p.caFile, cert, key
	o.MaxBackoff = 200 * time.Millisecond
	o.ResolveInterval = time.Second
	return o
}

// startPicker serves ingest on ip:port (port 0: any).
func startPicker(t *testing.T, p *pki, ip string, port int) *picker {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.ca.Pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	srv := ingest.NewServer(ingest.NewStore(3, nil), auth.MTLS{}, ip, testutil.Logger())
	g := grpc.NewServer(append(ingest.GRPCOptions(0), grpc.Creds(credentials.NewTLS(cfg)))...)
	telemetryv1.RegisterTelemetryServiceServer(g, srv)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return &picker{addr: ln.Addr().String(), srv: srv, g: g}
}

func (p *picker) port(t *testing.T) int {
	_, ps, _ := net.SplitHostPort(p.addr)
	n, err := strconv.Atoi(ps)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sequence returns the sequence of node's report held by the picker.
func (p *picker) sequence(node string) uint64 {
	v, ok := p.srv.Store().Node(node)
	if !ok || v.Report == nil {
		return 0
	}
	return v.Report.GetSequence()
}

// resolver answers pickerHost with a settable list of IPs.
type resolver struct {
	mu  sync.Mutex
	ips []string
}

func (r *resolver) set(ips ...string) {
	r.mu.Lock()
	r.ips = ips
	r.mu.Unlock()
}

func (r *resolver) lookup(_ context.Context, host string) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != pickerHost {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return append([]string(nil), r.ips...), nil
}

// startAgent runs a streamer until the test ends.
func startAgent(t *testing.T, o Options, r *resolver) *Streamer {
	t.Helper()
	s, err := New(o, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	s.SetResolver(r.lookup)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func nodeReport(node string, seq uint64) *telemetryv1.NodeReport {
	return &telemetryv1.NodeReport{
		Node: node, AgentInstance: "test", Sequence: seq,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(100 * time.Millisecond),
		Gpus: []*telemetryv1.GPU{{Uuid: "GPU-" + node}},
	}
}

// eventually waits up to 20 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, what, cond)
}

// eventuallyWithin is eventually with its own limit, for waits whose work
// grows with the test's size (hundreds of TLS handshakes under the race
// detector on a busy 2-core machine), where the limit guards a hang, not a
// speed. (stream_test.go imports Prometheus' testutil.)
func eventuallyWithin(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, limit, what, cond)
}
