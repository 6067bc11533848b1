package app

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/internal/testenv"
	"github.com/headroom-dev/headroom/internal/testpki"
	"github.com/headroom-dev/headroom/picker/auth"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// TestTokenAuthWithRealAPIServer runs the picker with --ingest.auth=token
// against a real kube-apiserver (envtest) and sends it reports over TLS
// with real pod-bound ServiceAccount tokens from TokenRequest. Like
// picker/auth's test it fails, rather than skips, without the envtest
// binaries (make envtest-assets); -short leaves it out.
func TestTokenAuthWithRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver and etcd (make envtest-assets); left out by -short")
	}
	_, cfg := testenv.Start(t)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &testenv.Cluster{CS: cs, NS: "headroom", Node: "gpu-node-a"}
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.NS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.CreateNode(t, "gpu-node-a")
	c.CreateNode(t, "gpu-node-b")
	c.CreateServiceAccount(t, "agent")
	tokenA := c.Token(t, "agent", auth.DefaultAudience, testenv.PodRef(c.CreatePod(t, "agent-a", "agent")))
	doomed := c.CreatePod(t, "agent-a2", "agent")
	revoked := c.Token(t, "agent", auth.DefaultAudience, testenv.PodRef(doomed))

	dir := t.TempDir()
	ca := testpki.NewCA(t, "picker-serving")
	o := loopbackOptions(t, AuthToken, dir, ca)
	o.Kubeconfig = testenv.Kubeconfig(t, cfg)
	o.Token.ServiceAccounts = []string{"headroom/agent"}
	p, err := New(o, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	client := tlsClient(t, p, ca)

	report := func(node string) *telemetryv1.NodeReport {
		return &telemetryv1.NodeReport{Node: node, AgentInstance: "x", Sequence: 1,
			SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Minute)}
	}
	cases := []struct {
		name, token, node string
		want              codes.Code
	}{
		{"own node", tokenA, "gpu-node-a", codes.OK},
		{"token for node A sending node B's report", tokenA, "gpu-node-b", codes.PermissionDenied},
		{"no token", "", "gpu-node-a", codes.Unauthenticated},
		{"not a token", "not-a-jwt", "gpu-node-a", codes.Unauthenticated},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(send(t, client, tc.token, report(tc.node))); got != tc.want {
				t.Fatalf("status %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("token of a deleted pod", func(t *testing.T) {
		// TokenRequest will not mint a token shorter-lived than 10 minutes,
		// so an expired one cannot be had: deleting the bound pod is what
		// invalidates an agent's token in a real cluster.
		if err := cs.CoreV1().Pods(c.NS).Delete(t.Context(), doomed.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
			t.Fatal(err)
		}
		waitInvalid(t, cs, revoked)
		if got := status.Code(send(t, client, revoked, report("gpu-node-a"))); got != codes.Unauthenticated {
			t.Fatalf("status %v, want Unauthenticated", got)
		}
	})
	if _, ok := p.Store().Node("gpu-node-b"); ok {
		t.Fatal("a refused report reached the store")
	}
	t.Run("the agent's streamer with a token file", func(t *testing.T) { streamWithTokenFile(t, p, ca, dir, tokenA) })
}

func tlsClient(t *testing.T, p *Picker, ca *testpki.CA) telemetryv1.TelemetryServiceClient {
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	conn, err := grpc.NewClient("passthrough:///"+p.IngestAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return telemetryv1.NewTelemetryServiceClient(conn)
}

// send opens a stream with token (none when empty), sends r and returns
// nil once acknowledged, or the stream's status.
func send(t *testing.T, c telemetryv1.TelemetryServiceClient, token string, r *telemetryv1.NodeReport) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	st, err := c.Stream(ctx)
	if err != nil {
		return err
	}
	_ = st.Send(r)
	_, err = st.Recv()
	return err
}

// waitInvalid waits until the API server itself refuses token.
func waitInvalid(t *testing.T, cs kubernetes.Interface, token string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		tr := &authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{auth.DefaultAudience}}}
		resp, err := cs.AuthenticationV1().TokenReviews().Create(t.Context(), tr, metav1.CreateOptions{})
		if err == nil && !resp.Status.Authenticated {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the API server still accepts the deleted pod's token")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// streamWithTokenFile runs the agent's real streamer with --picker.token-file
// against p and waits for its report.
func streamWithTokenFile(t *testing.T, p *Picker, ca *testpki.CA, dir, token string) {
	so := stream.DefaultOptions()
	so.Addresses, so.CAFile = p.IngestAddr().String(), ca.WriteCA(t, dir)
	so.TokenFile = filepath.Join(dir, "token")
	if err := os.WriteFile(so.TokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := stream.New(so, discard())
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan struct{})
	go func() { s.Run(sctx); close(sdone) }()
	defer func() { scancel(); <-sdone }()
	r := &telemetryv1.NodeReport{Node: "gpu-node-a", SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Minute)}
	r.AgentInstance, r.Sequence = "streamer", 7
	s.Publish(r)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := p.Store().Node("gpu-node-a"); ok && v.Report.GetSequence() == 7 && v.Connected {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the streamer's report never arrived")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
