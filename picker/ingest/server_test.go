package ingest

import (
	"context"
	"crypto/tls"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/headroom-dev/headroom/internal/testpki"
	"github.com/headroom-dev/headroom/picker/auth"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func TestStreamStatuses(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	badKV := report("node-a", 1)
	badKV.Pods[0].ModelServer.KvCacheUsage = &nan
	future := report("node-a", 1)
	future.SampleTimeUnixNano = uint64(time.Now().Add(time.Hour).UnixNano())
	// 2^63 and more wrap to a negative int64: a time long past, which the
	// skew check would wave through.
	wrapped := report("node-a", 1)
	wrapped.SampleTimeUnixNano = 1<<63 + uint64(time.Now().UnixNano())
	maxed := report("node-a", 1)
	maxed.SampleTimeUnixNano = math.MaxUint64
	longInterval := report("node-a", 1)
	longInterval.IntervalNano = int64(time.Hour)
	huge := report("node-a", 1)
	huge.Pods[0].Name = strings.Repeat("x", 100<<10) // beyond the 64 KiB limit of serve
	cases := []struct {
		name    string
		reports []*telemetryv1.NodeReport
		want    codes.Code
	}{
		{"accepted", []*telemetryv1.NodeReport{report("node-a", 1), report("node-a", 2)}, codes.OK},
		{"no node name", []*telemetryv1.NodeReport{report("", 1)}, codes.InvalidArgument},
		{"NaN KV usage: the pod is dropped, the report kept", []*telemetryv1.NodeReport{badKV}, codes.OK},
		{"node changes mid-stream", []*telemetryv1.NodeReport{report("node-a", 1), report("node-b", 2)}, codes.PermissionDenied},
		{"oversized report", []*telemetryv1.NodeReport{huge}, codes.ResourceExhausted},
		{"wildcard node name", []*telemetryv1.NodeReport{report("*", 1)}, codes.InvalidArgument},
		{"sample time far ahead", []*telemetryv1.NodeReport{future}, codes.InvalidArgument},
		{"sample time past 2^63", []*telemetryv1.NodeReport{wrapped}, codes.InvalidArgument},
		{"sample time 2^64-1", []*telemetryv1.NodeReport{maxed}, codes.InvalidArgument},
		{"interval beyond a minute", []*telemetryv1.NodeReport{longInterval}, codes.InvalidArgument},
	}
	_, addr := serve(t, auth.Insecure{})
	c := dial(t, addr)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := exchange(ctx, c, tc.reports...)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("status %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func TestMTLSNodeIdentity(t *testing.T) {
	t.Parallel()
	ca := testpki.NewCA(t, "agents")
	cases := []struct {
		name, cn, node string
		want           codes.Code
	}{
		{"own node", "node-a", "node-a", codes.OK},
		{"another node's report", "node-a", "node-b", codes.PermissionDenied},
		{"wildcard common name", "*", "node-b", codes.PermissionDenied},
		{"no client certificate", "", "node-a", codes.Unavailable}, // the TLS handshake fails
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sopts, dopts := mtlsPair(t, ca, tc.cn)
			srv, addr := serve(t, auth.MTLS{}, sopts...)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := exchange(ctx, dial(t, addr, dopts...), report(tc.node, 1))
			if got := status.Code(err); got != tc.want {
				t.Fatalf("status %v (%v), want %v", got, err, tc.want)
			}
			_, stored := srv.Store().Node("node-b")
			if stored {
				t.Fatal("a refused report reached the store")
			}
		})
	}
}

func TestMTLSRejectsOtherCA(t *testing.T) {
	t.Parallel()
	ca, rogue := testpki.NewCA(t, "agents"), testpki.NewCA(t, "rogue")
	sopts, _ := mtlsPair(t, ca, "")
	// The client trusts the real server but presents a certificate the
	// agents' CA did not sign.
	cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{rogue.Client(t, "node-a")}}
	dopts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cli))}
	srv, addr := serve(t, auth.MTLS{}, sopts...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := exchange(ctx, dial(t, addr, dopts...), report("node-a", 1))
	if status.Code(err) == codes.OK {
		t.Fatal("a certificate from another CA was accepted")
	}
	if _, ok := srv.Store().Node("node-a"); ok {
		t.Fatal("report stored")
	}
}

func TestStoredAndAcked(t *testing.T) {
	t.Parallel()
	srv, addr := serve(t, auth.Insecure{})
	c := dial(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(report("node-a", 1)); err != nil {
		t.Fatal(err)
	}
	ack, err := st.Recv()
	if err != nil || ack.GetNode() != "node-a" || ack.GetPicker() != "picker-test" {
		t.Fatalf("ack %v, %v", ack, err)
	}
	v, ok := srv.Store().Node("node-a")
	if !ok || !v.Connected || v.Stale || v.Report.GetSequence() != 1 {
		t.Fatalf("view %+v", v)
	}
	_ = st.CloseSend()
	_, _ = st.Recv()
	waitFor(t, func() bool { v, _ := srv.Store().Node("node-a"); return !v.Connected })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "the condition", cond)
}

// expiring authenticates every stream for node-a until a fixed time.
type expiring struct{ at time.Time }

func (e expiring) Authenticate(context.Context) (auth.Identity, error) {
	return auth.Identity{Node: "node-a", Subject: "test", Method: "test", Expires: e.at}, nil
}

func TestStreamEndsWhenCredentialsExpire(t *testing.T) {
	t.Parallel()
	_, addr := serve(t, expiring{at: time.Now().Add(300 * time.Millisecond)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := dial(t, addr).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(report("node-a", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if _, err := st.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after expiry: %v, want Unauthenticated", err)
	}
}
