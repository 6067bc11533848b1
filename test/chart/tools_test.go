package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// kubeVersion is the Kubernetes version the chart is rendered for: that
// of the schemas kubeconform checks against and of envtest's API server.
const kubeVersion = "1.37.2"

// Tools are the chart-tools folder's binaries, schemas and CRDs.
// GatewaySchemas and GatewayCRDs are those of what gateway.provider
// renders (Istio's DestinationRule, GKE's policies).
type Tools struct {
	Helm, Unittest, Kubeconform, Promtool string
	Schemas, CRDs                         string
	GatewaySchemas, GatewayCRDs           string
	Chart, Root                           string
}

// tools finds the tools `make chart-tools` builds, failing the test when
// one is missing (so a machine without them cannot pass it unchecked).
func tools(t *testing.T) Tools {
	t.Helper()
	if testing.Short() {
		t.Skip("the chart tests need the tools of `make chart-tools`; -short leaves them out")
	}
	root := repoRoot(t)
	dir := os.Getenv("CHART_TOOLS_DIR")
	if dir == "" {
		dir = filepath.Join(root, ".cache", "chart-tools")
	}
	tl := Tools{
		Helm: filepath.Join(dir, "bin", "helm"), Unittest: filepath.Join(dir, "bin", "helm-unittest"),
		Kubeconform: filepath.Join(dir, "bin", "kubeconform"),
		Schemas:     filepath.Join(dir, "schemas"), CRDs: filepath.Join(dir, "crds"),
		GatewaySchemas: filepath.Join(dir, "schemas-gateways"), GatewayCRDs: filepath.Join(dir, "crds-gateways"),
		Chart: filepath.Join(root, "charts", "headroom"), Root: root,
	}
	for _, p := range []string{tl.Helm, tl.Unittest, tl.Kubeconform, tl.Schemas, tl.CRDs, tl.GatewaySchemas, tl.GatewayCRDs} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%v: run `make chart-tools` (or go test -short to leave the chart tests out)", err)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool: %v (apt-get install prometheus)", err)
	}
	tl.Promtool = promtool
	return tl
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// run runs a tool and returns its standard output; the test fails with
// both outputs when it exits non-zero.
func run(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+os.TempDir()+"/headroom-helm-cache",
		"HELM_CONFIG_HOME="+os.TempDir()+"/headroom-helm-config", "HELM_DATA_HOME="+os.TempDir()+"/headroom-helm-data")
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}

// valueSets are the chart's ci/ values files, each rendered and linted.
func valueSets(t *testing.T, tl Tools) []string {
	t.Helper()
	sets, err := filepath.Glob(filepath.Join(tl.Chart, "ci", "*-values.yaml"))
	if err != nil || len(sets) == 0 {
		t.Fatalf("no values files in %s/ci (%v)", tl.Chart, err)
	}
	return sets
}

// render runs helm template and returns the objects.
func render(t *testing.T, tl Tools, args ...string) []map[string]any {
	t.Helper()
	out := run(t, nil, tl.Helm, append([]string{"template", "headroom", tl.Chart, "--namespace", "gpu", "--kube-version", kubeVersion}, args...)...)
	return splitDocs(t, out)
}

// splitDocs parses a multi-document YAML stream, leaving out empty ones.
func splitDocs(t *testing.T, stream []byte) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, doc := range strings.Split("\n"+string(stream), "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("parse rendered YAML: %v\n%s", err, doc)
		}
		if len(obj) > 0 {
			objs = append(objs, obj)
		}
	}
	return objs
}

// ofKind returns the rendered objects of one kind.
func ofKind(objs []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, o := range objs {
		if o["kind"] == kind {
			out = append(out, o)
		}
	}
	return out
}
