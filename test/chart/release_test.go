package chart

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/headroom-dev/headroom/internal/imagebuild"
)

// makefileVersion is the Makefile's VERSION, the release version.
func makefileVersion(t *testing.T, root string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^VERSION := (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no `VERSION := x` line in the Makefile")
	}
	return string(m[1])
}

// TestVersionsInStep: one release version everywhere. The Makefile's
// VERSION is the chart's version and appVersion (so the default image tag,
// what make images tags the archives with), and every image tag or chart
// version the README and docs/ show is it.
func TestVersionsInStep(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	want := makefileVersion(t, root)
	b, err := os.ReadFile(filepath.Join(root, "charts", "headroom", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Version, AppVersion string }
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Version != want || c.AppVersion != want {
		t.Errorf("Chart.yaml version %q appVersion %q, Makefile VERSION %q: release them together", c.Version, c.AppVersion, want)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"), filepath.Join(root, "charts", "headroom", "README.md"))
	refs := regexp.MustCompile("headroom-(?:agent|picker):(v?[0-9][^\\s\"'`)]*)|(?:--version[ =]|headroom-)(v?[0-9]+\\.[0-9]+\\.[0-9]+[^\\s\"'`)]*)\\.tgz|helm (?:install|upgrade|pull)[^\\n]*--version[ =](\\S+)")
	found := 0
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range refs.FindAllSubmatch(b, -1) {
			found++
			for _, v := range m[1:] {
				if len(v) > 0 && string(v) != want {
					t.Errorf("%s: %q names version %s, the Makefile's VERSION is %s", filepath.Base(d), m[0], v, want)
				}
			}
		}
	}
	if found == 0 {
		t.Error("no document names an image tag or chart version: docs/install.md should")
	}
}

// TestImageReferences: with default values the chart pulls exactly the
// names make images writes into its archives (repository and tag), so
// archives loaded into a node satisfy an install.
func TestImageReferences(t *testing.T) {
	tl := tools(t)
	tag := makefileVersion(t, tl.Root)
	reg := imagebuild.DefaultOptions().Registry
	want := map[string]string{"DaemonSet": reg + "/headroom-agent:" + tag, "Deployment": reg + "/headroom-picker:" + tag}
	objs := render(t, tl, "-f", filepath.Join(tl.Chart, "ci", "default-values.yaml"))
	for kind, ref := range want {
		found := false
		for _, o := range ofKind(objs, kind) {
			containers, _, _ := unstructured.NestedSlice(o, "spec", "template", "spec", "containers")
			for _, c := range containers {
				img, _ := c.(map[string]any)["image"].(string)
				if img != ref {
					t.Errorf("%s %s runs %q, make images builds %q", kind, name(o), img, ref)
				}
				found = true
			}
		}
		if !found {
			t.Errorf("no %s container rendered", kind)
		}
	}
}
