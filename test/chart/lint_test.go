package chart

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLint runs helm lint --strict with each ci/ values set.
func TestLint(t *testing.T) {
	tl := tools(t)
	for _, set := range valueSets(t, tl) {
		t.Run(filepath.Base(set), func(t *testing.T) {
			out := run(t, nil, tl.Helm, "lint", "--strict", tl.Chart, "-f", set)
			if !strings.Contains(string(out), "0 chart(s) failed") {
				t.Errorf("helm lint:\n%s", out)
			}
		})
	}
}

// TestUnittest runs the chart's helm-unittest suites (charts/headroom/tests).
func TestUnittest(t *testing.T) {
	tl := tools(t)
	out := run(t, nil, tl.Unittest, "--strict", "--color=false", tl.Chart)
	t.Logf("helm-unittest:\n%s", out)
}

// TestKubeconform validates every rendered object, with each ci/ values
// set, and docs/examples, against strict schemas of Kubernetes 1.37 and the
// CRDs (the gateways' included): unknown fields and kinds without a schema
// fail.
func TestKubeconform(t *testing.T) {
	tl := tools(t)
	name := "{{ .ResourceKind }}{{ .KindSuffix }}.json"
	locations := []string{"-schema-location", filepath.Join(tl.Schemas, name), "-schema-location", filepath.Join(tl.GatewaySchemas, name)}
	for _, set := range valueSets(t, tl) {
		t.Run(filepath.Base(set), func(t *testing.T) {
			manifest := run(t, nil, tl.Helm, "template", "headroom", tl.Chart, "--namespace", "gpu", "--kube-version", kubeVersion, "-f", set)
			out := run(t, manifest, tl.Kubeconform, append(append([]string{"-strict", "-summary"}, locations...), "-")...)
			if !strings.Contains(string(out), "Invalid: 0, Errors: 0, Skipped: 0") {
				t.Errorf("kubeconform:\n%s", out)
			}
			t.Logf("%s", strings.TrimSpace(string(out)))
		})
	}
	examples, _ := filepath.Glob(filepath.Join(tl.Root, "docs", "examples", "*.yaml"))
	if len(examples) == 0 {
		t.Fatal("no docs/examples/*.yaml")
	}
	t.Run("docs/examples", func(t *testing.T) {
		args := append(append([]string{"-strict", "-summary"}, locations...), examples...)
		out := run(t, nil, tl.Kubeconform, args...)
		if !strings.Contains(string(out), "Invalid: 0, Errors: 0, Skipped: 0") {
			t.Errorf("kubeconform:\n%s", out)
		}
	})
}
