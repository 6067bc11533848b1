package chart

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/headroom-dev/headroom/internal/testenv"
)

// guideBlock is one fenced block of docs/install.md with the marker
// before it.
type guideBlock struct {
	section, marker, file, lang string
	lines                       []string
	line                        int
}

var (
	reMarker = regexp.MustCompile(`^<!-- (tested: (install|images)|not tested here: .+|file: ([\w.-]+)) -->$`)
	reFence  = regexp.MustCompile("^```(\\w*)$")
)

// readGuide splits docs/install.md into its fenced blocks. Every shell
// block must say how it is checked, every YAML block which file it is.
func readGuide(r io.Reader) ([]guideBlock, error) {
	var out []guideBlock
	var errs []error
	var cur *guideBlock
	marker, section := "", ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			if cur.lang == "sh" && (cur.marker == "" || strings.HasPrefix(cur.marker, "file:")) {
				errs = append(errs, fmt.Errorf("line %d: a shell block with no <!-- tested: … --> or <!-- not tested here: … --> before it", cur.line))
			}
			if cur.lang == "yaml" && cur.file == "" {
				errs = append(errs, fmt.Errorf("line %d: a YAML block with no <!-- file: name --> before it", cur.line))
			}
			out, cur, marker = append(out, *cur), nil, ""
		case cur != nil:
			cur.lines = append(cur.lines, line)
		case strings.HasPrefix(line, "## "):
			section = strings.TrimPrefix(line, "## ")
		case reMarker.MatchString(line):
			marker = strings.TrimSuffix(strings.TrimPrefix(line, "<!-- "), " -->")
		case reFence.MatchString(line):
			b := guideBlock{section: section, marker: marker, lang: reFence.FindStringSubmatch(line)[1], line: n}
			if f, ok := strings.CutPrefix(marker, "file: "); ok {
				b.file = f
			}
			cur = &b
		case strings.TrimSpace(line) != "" && marker != "":
			errs = append(errs, fmt.Errorf("line %d: text between %q and its block", n, marker))
			marker = ""
		}
	}
	if cur != nil {
		errs = append(errs, fmt.Errorf("line %d: unterminated block", cur.line))
	}
	return out, errors.Join(errs...)
}

// commands joins continued lines and drops comments and blank lines.
func commands(lines []string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if cont, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(l)
		if c := strings.TrimSpace(cur.String()); c != "" && !strings.HasPrefix(c, "#") {
			out = append(out, c)
		}
		cur.Reset()
	}
	return out
}

// imageTargets are the make targets the guide may name in an images
// block, each with the test that runs what it does.
func imageTargets() map[string]string {
	return map[string]string{
		"images":         "test/image builds the same images (host architecture) with the same code",
		"test-images":    "it is test/image, pointed at bin/images",
		"registry-login": "internal/imagebuild TestLogin",
		"push-images":    "internal/imagebuild TestPushToARegistry",
	}
}

// TestInstallGuide runs docs/install.md: every Helm command and manifest
// of a "tested: install" block, in order, against a real kube-apiserver
// with the CRDs the guide expects, the chart pulled from an OCI registry
// on loopback (where ghcr.io would serve it). kubectl apply and delete are
// done by the test's client, which sends the same objects (no kubectl
// binary here). Before the uninstall it checks the wiring the guide
// builds: the pool's endpoint picker is the release's ext_proc Service and
// port, the route's backend is the pool.
func TestInstallGuide(t *testing.T) {
	tl := tools(t)
	f, err := os.Open(filepath.Join(tl.Root, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := readGuide(f)
	f.Close()
	if err != nil {
		t.Fatalf("docs/install.md: %v", err)
	}
	_, cfg := testenv.Start(t, testenv.WithCRDs(tl.CRDs, tl.GatewayCRDs))
	g := &guide{t: t, tl: tl, kubeconfig: testenv.Kubeconfig(t, cfg), dir: t.TempDir(), client: newObjectClient(t, cfg)}
	g.dyn, err = dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g.registry = g.serveChart()
	ran := 0
	for _, b := range blocks {
		switch {
		case b.file != "":
			if err := os.WriteFile(filepath.Join(g.dir, b.file), []byte(strings.Join(b.lines, "\n")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		case b.marker == "tested: images":
			for _, c := range commands(b.lines) {
				g.checkImageCommand(b, c)
			}
		case b.marker == "tested: install":
			if b.section == "Uninstall" {
				g.checkWiring()
			}
			for _, c := range commands(b.lines) {
				g.run(b, c)
				ran++
			}
		}
	}
	if ran < 5 || !g.installed || !g.uninstalled {
		t.Fatalf("ran %d commands (installed %v, uninstalled %v): the guide lost its tested install", ran, g.installed, g.uninstalled)
	}
}

type guide struct {
	t                      *testing.T
	tl                     Tools
	kubeconfig, dir        string
	registry               string
	client                 objectClient
	dyn                    dynamic.Interface
	installed, uninstalled bool
	namespace, releaseName string
}

// serveChart packages the chart as make chart-package does and pushes it
// to a registry on loopback, as make push-chart does to ghcr.io.
func (g *guide) serveChart() string {
	t := g.t
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	version := makefileVersion(t, g.tl.Root)
	pkgDir := t.TempDir()
	run(t, nil, g.tl.Helm, "package", g.tl.Chart, "--version", version, "--app-version", version, "--destination", pkgDir)
	run(t, nil, g.tl.Helm, "push", filepath.Join(pkgDir, "headroom-"+version+".tgz"), "oci://"+host+"/headroom-dev/charts", "--plain-http")
	return host
}

// run runs one command of a tested block.
func (g *guide) run(b guideBlock, c string) {
	t := g.t
	args := strings.Fields(c)
	switch {
	case args[0] == "helm":
		for i, a := range args {
			if strings.HasPrefix(a, "oci://ghcr.io/headroom-dev/") {
				args[i] = "oci://" + g.registry + strings.TrimPrefix(a, "oci://ghcr.io")
				args = append(args, "--plain-http")
			}
			if a == "charts/headroom" {
				args[i] = g.tl.Chart
			}
			if a == "--namespace" && i+1 < len(args) {
				g.namespace = args[i+1]
			}
		}
		if len(args) > 2 && (args[1] == "install" || args[1] == "upgrade") {
			g.releaseName, g.installed = args[2], true
		}
		if args[1] == "uninstall" {
			g.uninstalled = true
		}
		cmd := append(args[1:], "--kubeconfig", g.kubeconfig)
		if out, err := runIn(g.dir, g.tl.Helm, cmd...); err != nil {
			t.Fatalf("docs/install.md line %d: %s: %v\n%s", b.line, c, err, out)
		}
	case len(args) == 4 && args[0] == "kubectl" && (args[1] == "apply" || args[1] == "delete") && args[2] == "-f":
		g.kubectl(args[1], args[3])
	default:
		t.Fatalf("docs/install.md line %d: %q in a tested block: the test runs helm and kubectl apply/delete -f only", b.line, c)
	}
}

// runIn runs a command whose file arguments are the guide's files in dir.
func runIn(dir, name string, args ...string) ([]byte, error) {
	for i, a := range args {
		if !strings.HasPrefix(a, "-") && !filepath.IsAbs(a) && fileExists(filepath.Join(dir, a)) {
			args[i] = filepath.Join(dir, a)
		}
	}
	return runErr(nil, name, args...)
}

func fileExists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}

// kubectl applies or deletes the objects of one of the guide's files.
func (g *guide) kubectl(verb, file string) {
	t := g.t
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		t.Fatalf("kubectl %s -f %s: the guide has no such file block: %v", verb, file, err)
	}
	for _, o := range splitDocs(t, b) {
		u := &unstructured.Unstructured{Object: o}
		res := g.client.resource(t, o, u.GetNamespace())
		switch verb {
		case "apply":
			if _, err := res.Apply(t.Context(), u.GetName(), u, metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
				t.Fatalf("kubectl apply -f %s: %s %s: %v", file, u.GetKind(), u.GetName(), err)
			}
		case "delete":
			if err := res.Delete(t.Context(), u.GetName(), metav1.DeleteOptions{}); err != nil {
				t.Fatalf("kubectl delete -f %s: %s %s: %v", file, u.GetKind(), u.GetName(), err)
			}
		}
	}
}

// checkWiring: what the guide built fits together.
func (g *guide) checkWiring() {
	t := g.t
	get := func(gvr schema.GroupVersionResource, name string) *unstructured.Unstructured {
		t.Helper()
		o, err := g.dyn.Resource(gvr).Namespace(g.namespace).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("after the guide's steps: %s %s/%s: %v", gvr.Resource, g.namespace, name, err)
		}
		return o
	}
	pools, err := g.dyn.Resource(schema.GroupVersionResource{Group: "inference.networking.k8s.io", Version: "v1", Resource: "inferencepools"}).
		Namespace(g.namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(pools.Items) != 1 {
		t.Fatalf("InferencePools in %s: %v (%v)", g.namespace, pools, err)
	}
	pool := pools.Items[0]
	svcName, _, _ := unstructured.NestedString(pool.Object, "spec", "endpointPickerRef", "name")
	port, _, _ := unstructured.NestedInt64(pool.Object, "spec", "endpointPickerRef", "port", "number")
	svc := get(schema.GroupVersionResource{Version: "v1", Resource: "services"}, svcName)
	ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
	found := false
	for _, p := range ports {
		pm := p.(map[string]any)
		if pm["port"] == port && pm["targetPort"] == "extproc" {
			found = true
		}
	}
	if !found {
		t.Errorf("the pool's endpointPickerRef is %s:%d; the release's Service %s has ports %v", svcName, port, svcName, ports)
	}
	deploy := get(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, g.releaseName+"-picker")
	args, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
	if !strings.Contains(fmt.Sprint(args), "--pool.name="+pool.GetName()) {
		t.Errorf("the picker does not route for the guide's pool %s: %v", pool.GetName(), args)
	}
	route := get(schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"}, "llama")
	if !strings.Contains(fmt.Sprint(route.Object["spec"]), "kind:InferencePool name:"+pool.GetName()) {
		t.Errorf("the route's backend is not the pool %s: %v", pool.GetName(), route.Object["spec"])
	}
}

// checkImageCommand: an images block names make targets that exist and
// that a test runs.
func (g *guide) checkImageCommand(b guideBlock, c string) {
	t := g.t
	mk, err := os.ReadFile(filepath.Join(g.tl.Root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(c, "export ") {
		return // credentials for the next command
	}
	fields := strings.Fields(c)
	for len(fields) > 0 && strings.Contains(fields[0], "=") {
		fields = fields[1:] // environment assignments
	}
	if len(fields) < 2 || fields[0] != "make" {
		t.Errorf("docs/install.md line %d: %q: an images block holds make commands", b.line, c)
		return
	}
	for _, target := range fields[1:] {
		if strings.Contains(target, "=") {
			continue
		}
		if _, ok := imageTargets()[target]; !ok {
			t.Errorf("docs/install.md line %d: make %s: no test runs it (imageTargets)", b.line, target)
		}
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).Match(mk) {
			t.Errorf("docs/install.md line %d: the Makefile has no target %s", b.line, target)
		}
	}
}

// TestReadGuide: the guide reader refuses unmarked blocks.
func TestReadGuide(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, doc, want string }{
		{"marked", "<!-- tested: install -->\n```sh\nhelm version\n```\n", ""},
		{"unmarked shell", "```sh\nhelm version\n```\n", "no <!-- tested"},
		{"unnamed yaml", "```yaml\na: 1\n```\n", "no <!-- file"},
		{"text between", "<!-- tested: install -->\nwords\n```sh\nhelm version\n```\n", "text between"},
		{"unterminated", "<!-- not tested here: x -->\n```sh\nhelm version\n", "unterminated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := readGuide(strings.NewReader(tt.doc))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
