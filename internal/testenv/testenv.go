// Package testenv runs a real kube-apiserver and etcd (controller-runtime's
// envtest, with the binaries `make envtest-assets` builds) for tests, and
// creates the objects a pod-bound ServiceAccount token needs: a node, a
// ServiceAccount, a pod scheduled on the node, and the token itself
// (TokenRequest). Only tests import it.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// AssetsDir returns where kube-apiserver and etcd are: KUBEBUILDER_ASSETS,
// else the repository's .cache/envtest that `make envtest-assets` fills.
// When neither holds both binaries the test fails (it does not skip), so
// a machine without the assets cannot report this security test as
// passed; -short skips it.
func AssetsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		if root, err := repoRoot(); err == nil {
			dir = filepath.Join(root, ".cache", "envtest")
		}
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			t.Fatalf("no %s in KUBEBUILDER_ASSETS=%q (%v): run `make envtest-assets` "+
				"(or `go test -short` to leave out the tests that need a real API server)", bin, dir, err)
		}
	}
	return dir
}

// repoRoot walks up from the working directory to the go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// Option changes the environment before Start starts it.
type Option func(*envtest.Environment)

// WithCRDs installs the CustomResourceDefinitions in these YAML files or
// directories (all must exist) and waits until they are served.
func WithCRDs(paths ...string) Option {
	return func(env *envtest.Environment) {
		env.CRDInstallOptions.Paths = append(env.CRDInstallOptions.Paths, paths...)
		env.CRDInstallOptions.ErrorIfPathMissing = true
	}
}

// ModuleDir returns the directory of module in the build list (`go list
// -m`), to find files it ships, such as CRD YAMLs. It fails the test when
// the go command cannot say.
func ModuleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Fatalf("find module %s (go list -m): %v", module, err)
	}
	return dir
}

// Start starts etcd and kube-apiserver for the whole test. envtest
// configures the service-account issuer and signing keys that TokenRequest
// and TokenReview need.
func Start(t *testing.T, opts ...Option) (*envtest.Environment, *rest.Config) {
	t.Helper()
	ctrllog.SetLogger(logr.Discard()) // envtest logs through controller-runtime's global logger
	env := &envtest.Environment{BinaryAssetsDirectory: AssetsDir(t)}
	for _, o := range opts {
		o(env)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	return env, cfg
}

// Cluster creates objects in one namespace, for pods on one node.
type Cluster struct {
	CS   kubernetes.Interface
	NS   string
	Node string
}

// CreateNode creates a node object (no kubelet runs).
func (c *Cluster) CreateNode(t *testing.T, name string) *corev1.Node {
	t.Helper()
	n, err := c.CS.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node: %v", err)
	}
	return n
}

// CreateServiceAccount creates a ServiceAccount in the namespace.
func (c *Cluster) CreateServiceAccount(t *testing.T, name string) {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.NS}}
	if _, err := c.CS.CoreV1().ServiceAccounts(c.NS).Create(t.Context(), sa, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account: %v", err)
	}
}

// CreatePod creates a pod already scheduled on the node. No kubelet runs,
// so it never starts; the token machinery only needs the object.
func (c *Cluster) CreatePod(t *testing.T, name, serviceAccount string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.NS},
		Spec: corev1.PodSpec{
			ServiceAccountName: serviceAccount,
			NodeName:           c.Node,
			Containers:         []corev1.Container{{Name: "agent", Image: "example.invalid/agent:1"}},
		},
	}
	pod, err := c.CS.CoreV1().Pods(c.NS).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	return pod
}

// Token asks the API server for a token of serviceAccount (TokenRequest),
// bound to ref when it is not nil.
func (c *Cluster) Token(t *testing.T, serviceAccount, audience string, ref *authnv1.BoundObjectReference) string {
	t.Helper()
	expiry := int64(3600)
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: &expiry, BoundObjectRef: ref,
	}}
	resp, err := c.CS.CoreV1().ServiceAccounts(c.NS).CreateToken(t.Context(), serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("request token: %v", err)
	}
	return resp.Status.Token
}

// PodRef binds a token to p.
func PodRef(p *corev1.Pod) *authnv1.BoundObjectReference {
	return &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}
}

// Kubeconfig writes cfg as a kubeconfig file in a temporary directory, for
// programs that take --kubeconfig.
func Kubeconfig(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}
