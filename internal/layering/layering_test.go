package layering

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/headroom-dev/headroom"

// deps runs go list over patterns and returns each package's production
// dependencies (direct and indirect, test files left out).
func deps(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
	}
	m := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			m[f[0]] = f[1:]
		}
	}
	if len(m) == 0 {
		t.Fatalf("go list %v listed no package", args)
	}
	return m
}

// under reports whether pkg is the module's dir or a package below it.
func under(pkg, dir string) bool {
	p := module + "/" + dir
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

// TestImportsRunOneWay checks every production package of the layers below
// the commands against the directories it must not depend on, directly or
// through another package.
func TestImportsRunOneWay(t *testing.T) {
	t.Parallel()
	rules := []struct {
		layer     string
		forbidden []string
	}{
		{"collector", []string{"agent", "picker", "sim", "cmd", "internal/demo"}},
		{"agent", []string{"picker", "sim", "cmd", "internal/demo"}},
		{"snapshot", []string{"agent", "collector", "picker", "proto", "sim", "cmd", "internal"}},
		{"proto", []string{"agent", "collector", "picker", "snapshot", "sim", "cmd", "internal"}},
	}
	for _, r := range rules {
		t.Run(r.layer, func(t *testing.T) {
			t.Parallel()
			for pkg, ds := range deps(t, module+"/"+r.layer+"/...") {
				for _, d := range ds {
					for _, f := range r.forbidden {
						if under(d, f) {
							t.Errorf("%s depends on %s: nothing under %s/ may depend on %s/", pkg, d, r.layer, f)
						}
					}
				}
			}
		})
	}
}

// TestAgentLinksNoMethodsByName keeps the agent binary small: a package
// that calls methods by name (text/template does) makes the linker keep
// every exported method of every type. gRPC's golang.org/x/net/trace
// brings html/template unless built with -tags=grpcnotrace, as the
// Makefile builds; with it the agent's code and read-only data were 5 MB
// smaller, and so was its RSS (docs/benchmarks.md).
func TestAgentLinksNoMethodsByName(t *testing.T) {
	t.Parallel()
	for _, d := range deps(t, "-tags=grpcnotrace", module+"/cmd/headroom-agent")[module+"/cmd/headroom-agent"] {
		if d == "text/template" || d == "html/template" {
			t.Errorf("headroom-agent links %s (through a new dependency?): every exported method is kept", d)
		}
	}
}
