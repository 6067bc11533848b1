package imagebuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPickerDeps keeps the picker's binary small (docs/images.md): it
// must not link client-go's typed clientset or informer factories, which
// register every Kubernetes API group, nor more API groups than the
// requests it makes (pods, TokenReviews); and built as its image is, it
// must not link golang.org/x/net/trace or the template packages, whose
// reflection stops the linker from dropping unused methods.
func TestPickerDeps(t *testing.T) {
	t.Parallel()
	s, ok := specByName("headroom-picker")
	if !ok {
		t.Fatal("no headroom-picker image spec")
	}
	// What any build of the picker must leave out (prefixes).
	never := []string{
		"k8s.io/client-go/kubernetes",
		"k8s.io/client-go/informers",
		"k8s.io/client-go/dynamic/dynamicinformer",
		"k8s.io/client-go/applyconfigurations",
	}
	// The only Kubernetes API packages it may link.
	apis := []string{"k8s.io/api/authentication/v1", "k8s.io/api/core/v1"}
	tests := []struct {
		name string
		tags []string
		// notInImage: left out only with the image's tags.
		notInImage []string
	}{
		{name: "go build", tags: nil},
		{name: "image build", tags: s.tags, notInImage: []string{"golang.org/x/net/trace", "html/template", "text/template"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			deps := listDeps(t, s.pkg, tt.tags)
			for _, d := range deps {
				for _, bad := range append(slices.Clone(never), tt.notInImage...) {
					if d == bad || strings.HasPrefix(d, bad+"/") {
						t.Errorf("%s links %s (tags %q)", s.pkg, d, tt.tags)
					}
				}
				if strings.HasPrefix(d, "k8s.io/api/") && !slices.Contains(apis, d) {
					t.Errorf("%s links the Kubernetes API package %s; it may link only %v", s.pkg, d, apis)
				}
			}
		})
	}
}

// listDeps is `go list -deps` of pkg as the image build compiles it.
func listDeps(t *testing.T, pkg string, tags []string) []string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, which the image build runs too: %v", err)
	}
	args := []string{"list", "-deps"}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(t.Context(), goCmd, append(args, pkg)...)
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOOS=linux", "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/headroom-dev/headroom/picker/pool") {
		t.Fatalf("go list -deps %s lists no picker/pool: %d lines, not the picker's dependencies?", pkg, len(deps))
	}
	return deps
}
