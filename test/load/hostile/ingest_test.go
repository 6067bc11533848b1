package hostile

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/internal/testenv"
	"github.com/headroom-dev/headroom/internal/testpki"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// modelPod is one model-server pod of the pool.
type modelPod struct{ name, node, ip string }

// pool: three GPU nodes of two vLLM pods each.
var pool = []modelPod{
	{"vllm-0", "gpu-a", "10.0.0.1"}, {"vllm-1", "gpu-a", "10.0.0.2"},
	{"vllm-2", "gpu-b", "10.0.0.3"}, {"vllm-3", "gpu-b", "10.0.0.4"},
	{"vllm-4", "gpu-c", "10.0.0.5"}, {"vllm-5", "gpu-c", "10.0.0.6"},
}

const namespace, audience = "models", "headroom-picker"

// endpoints is the pool as a static list, each endpoint with its node
// (ip:port@node), so that a report joins only its own node's pods.
func endpoints() string {
	var eps []string
	for _, p := range pool {
		eps = append(eps, p.ip+":8000@"+p.node)
	}
	return strings.Join(eps, ",")
}

// report is node's report: its pods, equally and moderately loaded, plus
// extra (a forged entry).
func report(node string, seq uint64, extra ...*telemetryv1.Pod) *telemetryv1.NodeReport {
	kv := 0.3
	r := &telemetryv1.NodeReport{Node: node, AgentInstance: node + "-agent", Sequence: seq,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(200 * time.Millisecond)}
	for _, p := range pool {
		if p.node == node {
			r.Pods = append(r.Pods, &telemetryv1.Pod{Namespace: namespace, Name: p.name, Ip: p.ip,
				ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 1, RunningRequests: 8, KvCacheUsage: &kv}})
		}
	}
	r.Pods = append(r.Pods, extra...)
	return r
}

// agent runs a real agent streamer publishing node's report every 200 ms
// (with extra pods forged in) until the test ends.
func agent(t *testing.T, so stream.Options, node string, extra ...*telemetryv1.Pod) {
	t.Helper()
	s, err := stream.New(so, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			s.Publish(report(node, seq, extra...))
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// saturated is the forged entry of the cross-node attack: a pod of another
// node, reported full.
func saturated(p modelPod) *telemetryv1.Pod {
	kv := 0.99
	return &telemetryv1.Pod{Namespace: namespace, Name: p.name, Ip: p.ip,
		ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 50, RunningRequests: 64, KvCacheUsage: &kv}}
}

// tokenSystem is the picker in token mode: a real kube-apiserver (envtest)
// holding the InferencePool, its pods on their nodes, and the agents'
// ServiceAccount; the picker watches the pool and reviews tokens there.
type tokenSystem struct {
	cluster    func(node string) *testenv.Cluster
	caFile     string
	pickerArgs []string
}

func startTokenSystem(t *testing.T) *tokenSystem {
	t.Helper()
	gie := testenv.ModuleDir(t, "sigs.k8s.io/gateway-api-inference-extension")
	_, cfg := testenv.Start(t, testenv.WithCRDs(filepath.Join(gie, "config", "crd", "bases", "inference.networking.k8s.io_inferencepools.yaml")))
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sys := &tokenSystem{cluster: func(node string) *testenv.Cluster { return &testenv.Cluster{CS: cs, NS: namespace, Node: node} }}
	sys.cluster("").CreateServiceAccount(t, "headroom-agent")
	for _, node := range []string{"gpu-a", "gpu-b", "gpu-c", "gpu-d"} { // gpu-d: no model server
		sys.cluster(node).CreateNode(t, node)
	}
	for _, p := range pool {
		createReadyPod(t, cs, p)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ip := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
		"metadata": map[string]any{"name": "llama", "namespace": namespace},
		"spec": map[string]any{
			"selector":          map[string]any{"matchLabels": map[string]any{"app": "vllm"}},
			"targetPorts":       []any{map[string]any{"number": int64(8000)}},
			"endpointPickerRef": map[string]any{"name": "headroom-picker", "kind": "Service", "port": map[string]any{"number": int64(9002)}},
		},
	}}
	gvr := schema.GroupVersionResource{Group: "inference.networking.k8s.io", Version: "v1", Resource: "inferencepools"}
	if _, err := dyn.Resource(gvr).Namespace(namespace).Create(ctx, ip, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ca := testpki.NewCA(t, "hostile")
	sys.caFile = ca.WriteCA(t, dir)
	cert, key := testpki.WriteFiles(t, dir, "ingest", ca.Server(t, "127.0.0.1"))
	sys.pickerArgs = []string{"--pool.name", "llama", "--pool.namespace", namespace, "--kubeconfig", testenv.Kubeconfig(t, cfg),
		"--ingest.auth", "token", "--ingest.tls-cert-file", cert, "--ingest.tls-key-file", key,
		"--auth.token.service-accounts", namespace + "/headroom-agent", "--auth.token.audiences", audience}
	return sys
}

func createReadyPod(t *testing.T, cs kubernetes.Interface, p modelPod) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: namespace, Labels: map[string]string{"app": "vllm"}},
		Spec:       corev1.PodSpec{NodeName: p.node, Containers: []corev1.Container{{Name: "vllm", Image: "example.invalid/vllm:1"}}},
	}
	created, err := cs.CoreV1().Pods(namespace).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.ip, PodIPs: []corev1.PodIP{{IP: p.ip}},
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	if _, err := cs.CoreV1().Pods(namespace).UpdateStatus(t.Context(), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// agentOptions are the streamer options of the agent on node: a real
// token bound to an agent pod there, the ingest's CA.
func (sys *tokenSystem) agentOptions(t *testing.T, ingest, node string) stream.Options {
	t.Helper()
	c := sys.cluster(node)
	pod := c.CreatePod(t, "agent-"+node, "headroom-agent")
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte(c.Token(t, "headroom-agent", audience, testenv.PodRef(pod))), 0o600); err != nil {
		t.Fatal(err)
	}
	so := stream.DefaultOptions()
	so.Addresses, so.TokenFile, so.CAFile = ingest, tok, sys.caFile
	return so
}

// fakeTokens sends rate streams a second to the ingest, each with a token
// no one issued: the claims of a real one (issuer, audience, subject)
// with a fresh ID, a random signature, so that nothing short of a review
// can tell. At most 4,096 are outstanding; the rest are counted as not
// sent.
func fakeTokens(t *testing.T, ingest, caFile, realToken string, rate float64) *attack {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	var clients []telemetryv1.TelemetryServiceClient
	for range 8 {
		conn, err := grpc.NewClient("passthrough:///"+ingest, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		clients = append(clients, telemetryv1.NewTelemetryServiceClient(conn))
	}
	parts := strings.Split(realToken, ".")
	claims := map[string]any{}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(raw, &claims) != nil {
		t.Fatalf("the agent's token has no readable claims")
	}
	forge := func() string {
		claims["jti"] = rand.Text()
		payload, _ := json.Marshal(claims)
		sig := make([]byte, 256)
		_, _ = rand.Read(sig)
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &attack{name: "tokens", cancel: cancel}
	var sent, accepted, refused, skipped atomic.Int64
	sem := make(chan struct{}, 4096)
	a.wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		start, n := time.Now(), 0
		for now := range tick.C {
			if ctx.Err() != nil {
				return
			}
			for due := int(now.Sub(start).Seconds() * rate); n < due; n++ {
				select {
				case sem <- struct{}{}:
				default:
					skipped.Add(1)
					continue
				}
				sent.Add(1)
				c, tok := clients[n%len(clients)], forge() // forged here: forge is not safe for concurrent use
				a.wg.Go(func() {
					defer func() { <-sem }()
					if fakeReport(ctx, c, tok) {
						accepted.Add(1)
					} else {
						refused.Add(1)
					}
				})
			}
		}
	})
	a.results = func() string {
		return fmt.Sprintf("%d sent (%.0f/s offered), %d refused, %d accepted, %d not sent (4,096 outstanding)", sent.Load(), rate, refused.Load(), accepted.Load(), skipped.Load())
	}
	return a
}

// fakeReport sends one report under token and says whether the picker
// acknowledged it.
func fakeReport(ctx context.Context, c telemetryv1.TelemetryServiceClient, token string) bool {
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token), 10*time.Second)
	defer cancel()
	st, err := c.Stream(ctx)
	if err != nil {
		return false
	}
	if err := st.Send(report("gpu-a", 1)); err != nil {
		return false
	}
	_, err = st.Recv()
	return err == nil
}
