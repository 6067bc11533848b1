package chart

import (
	"context"
	"encoding/base64"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/internal/testenv"
	"github.com/headroom-dev/headroom/picker/app"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// checkWiring runs the picker and the agent's streamer with the flags the
// installed release gives them, the certificate it generated and a token
// as the kubelet would project it, the picker acting as its own
// ServiceAccount: a report must arrive. It proves the pieces the chart
// joins fit: the certificate's names are the address the agents dial, the
// allowlisted ServiceAccount is the agents', the audience matches, and the
// picker's RBAC lets it watch its pool and review tokens.
func checkWiring(t *testing.T, cfg *rest.Config, objs []map[string]any, release, ns string) {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := writeSecret(t, cs, release+"-picker-tls", ns, dir)
	createPool(t, cfg, "llama", ns)

	po := app.DefaultOptions()
	parseArgs(t, containerArgs(t, objs, "Deployment")[0], po.AddFlags)
	po.IngestAddress, po.MetricsAddress, po.ExtProcAddress, po.HealthAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	po.CertFile, po.KeyFile = files["tls.crt"], files["tls.key"]
	po.Kubeconfig = impersonating(t, cfg, "system:serviceaccount:"+ns+":"+release+"-picker", dir)
	po.DrainDelay, po.ShutdownGrace = 0, time.Second
	logger := testutil.Logger()
	p, err := app.New(po, logger)
	if err != nil {
		t.Fatalf("picker with the chart's flags: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The agent: its token is what the kubelet projects into its pod.
	c := &testenv.Cluster{CS: cs, NS: ns, Node: "gpu-node-a"}
	c.CreateNode(t, c.Node)
	pod := c.CreatePod(t, "agent-gpu-node-a", release+"-agent")
	ao := agent.DefaultOptions()
	parseArgs(t, containerArgs(t, objs, "DaemonSet")[0], ao.AddFlags)
	so := ao.Stream
	dial, _, _ := strings.Cut(so.Addresses, ":")
	so.Addresses, so.ServerName = p.IngestAddr().String(), dial // dial here, verify the name the chart gives
	so.CAFile, so.TokenFile = files["ca.crt"], filepath.Join(dir, "token")
	if err := os.WriteFile(so.TokenFile, []byte(c.Token(t, release+"-agent", "headroom-picker", testenv.PodRef(pod))), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := stream.New(so, logger)
	if err != nil {
		t.Fatalf("streamer with the chart's flags: %v", err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan struct{})
	go func() { s.Run(sctx); close(sdone) }()
	defer func() { scancel(); <-sdone }()
	s.Publish(&telemetryv1.NodeReport{Node: c.Node, AgentInstance: "chart", Sequence: 3,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Second)})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, ok := p.Store().Node(c.Node); ok && v.Report.GetSequence() == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent's report never reached the picker: the chart's TLS, token or allowlist do not fit")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// parseArgs parses a container's args with a command's flag set.
func parseArgs(t *testing.T, args []string, add func(*flag.FlagSet)) {
	t.Helper()
	fs := flag.NewFlagSet("chart", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	add(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
}

// writeSecret writes each key of a Secret to a file and returns the paths.
func writeSecret(t *testing.T, cs kubernetes.Interface, name, ns, dir string) map[string]string {
	t.Helper()
	sec, err := cs.CoreV1().Secrets(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for k, v := range sec.Data {
		files[k] = filepath.Join(dir, k)
		if err := os.WriteFile(files[k], v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// createPool creates an InferencePool for the picker to watch.
func createPool(t *testing.T, cfg *rest.Config, name, ns string) {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pool := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "inference.networking.k8s.io/v1", "kind": "InferencePool",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"selector":    map[string]any{"matchLabels": map[string]any{"app": name}},
			"targetPorts": []any{map[string]any{"number": int64(8000)}},
		},
	}}
	gvr := schema.GroupVersionResource{Group: "inference.networking.k8s.io", Version: "v1", Resource: "inferencepools"}
	if _, err := dyn.Resource(gvr).Namespace(ns).Create(t.Context(), pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// impersonating writes a kubeconfig that acts as user (a ServiceAccount),
// so the chart's RBAC decides what the picker may do.
func impersonating(t *testing.T, cfg *rest.Config, user, dir string) string {
	t.Helper()
	ns := strings.Split(user, ":")[2]
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
		Impersonate: user, ImpersonateGroups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(dir, "kubeconfig-"+base64.RawURLEncoding.EncodeToString([]byte(user)))
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
