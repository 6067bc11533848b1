package imagebuild

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/command"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// pinnedRef is an image reference pinned by digest; a tag may stay beside
// it for the reader.
var pinnedRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?@sha256:[0-9a-f]{64}$`)

// dockerfile is what the checks need of a parsed Dockerfile: its final
// stage's settings.
type dockerfile struct {
	user, workdir string
	entrypoint    []string
	expose        []string
	labels        map[string]string
	copies        []string // COPY --from sources of the final stage
	runs          []string // RUN commands of every stage
}

// checkDockerfile parses a Dockerfile with BuildKit's own parser and
// returns every problem: an unknown instruction, a base not pinned by
// digest, and a final stage that differs from what make images builds for s.
func checkDockerfile(r io.Reader, s spec) []error {
	res, err := parser.Parse(r)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, w := range res.Warnings {
		errs = append(errs, fmt.Errorf("parser warning: %s", w.Short))
	}
	d, ferrs := walk(res.AST)
	errs = append(errs, ferrs...)
	if d.user != fmt.Sprintf("%d:%d", nonroot, nonroot) {
		errs = append(errs, fmt.Errorf("USER %q, want %d:%d", d.user, nonroot, nonroot))
	}
	if !slices.Equal(d.entrypoint, []string{s.entrypoint()}) {
		errs = append(errs, fmt.Errorf("ENTRYPOINT %q, want [%q] in JSON form", d.entrypoint, s.entrypoint()))
	}
	var ports []string
	for _, p := range s.ports {
		ports = append(ports, strconv.Itoa(p))
	}
	if !slices.Equal(d.expose, ports) {
		errs = append(errs, fmt.Errorf("EXPOSE %v, want %v", d.expose, ports))
	}
	for k := range (Options{}).labels(s) {
		if _, ok := d.labels[k]; !ok {
			errs = append(errs, fmt.Errorf("no LABEL %s", k))
		}
	}
	for _, layer := range []string{"base", "app"} {
		if src := "/out/" + s.name + "/" + layer + "/"; !slices.Contains(d.copies, src) {
			errs = append(errs, fmt.Errorf("the final stage does not copy %s (the %s layer of hack/imagebuild rootfs)", src, layer))
		}
	}
	if !slices.ContainsFunc(d.runs, func(r string) bool {
		return strings.Contains(r, "hack/imagebuild rootfs") && strings.Contains(r, "--images="+s.name+" ")
	}) {
		errs = append(errs, fmt.Errorf("no RUN of hack/imagebuild rootfs --images=%s", s.name))
	}
	return errs
}

// walk reads every instruction; the settings kept are the final stage's.
func walk(ast *parser.Node) (dockerfile, []error) {
	var d dockerfile
	var errs []error
	stages := map[string]bool{}
	for _, n := range ast.Children {
		args := nodeArgs(n)
		instr := strings.ToLower(n.Value)
		if _, ok := command.Commands[instr]; !ok {
			errs = append(errs, fmt.Errorf("line %d: unknown instruction %q", n.StartLine, n.Value))
			continue
		}
		switch instr {
		case command.From:
			if len(args) == 0 {
				errs = append(errs, fmt.Errorf("line %d: FROM without an image", n.StartLine))
				continue
			}
			if base := args[0]; base != "scratch" && !stages[strings.ToLower(base)] && !pinnedRef.MatchString(base) {
				errs = append(errs, fmt.Errorf("line %d: FROM %s is not pinned by digest (image@sha256:…)", n.StartLine, base))
			}
			if len(args) == 3 && strings.EqualFold(args[1], "as") {
				stages[strings.ToLower(args[2])] = true
			}
			d = dockerfile{labels: map[string]string{}, runs: d.runs}
		case command.User:
			d.user = strings.Join(args, " ")
		case command.Workdir:
			d.workdir = strings.Join(args, " ")
		case command.Entrypoint:
			if !n.Attributes["json"] {
				errs = append(errs, fmt.Errorf("line %d: ENTRYPOINT in shell form needs a shell, which the image has not", n.StartLine))
			}
			d.entrypoint = args
		case command.Expose:
			d.expose = append(d.expose, args...)
		case command.Label:
			// The parser gives each pair as key, value, "=".
			for i := 0; i+1 < len(args); i += 3 {
				d.labels[args[i]] = strings.Trim(args[i+1], `"`)
			}
		case command.Copy:
			if slices.ContainsFunc(n.Flags, func(f string) bool { return strings.HasPrefix(f, "--from=") }) && len(args) > 0 {
				d.copies = append(d.copies, args[0])
			}
		case command.Run:
			d.runs = append(d.runs, strings.Join(args, " "))
		}
	}
	return d, errs
}

func nodeArgs(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

// TestDockerfiles: images/agent.Dockerfile and images/picker.Dockerfile
// parse, start only from bases pinned by digest, and give the image the
// user, entrypoint, ports, labels and layers make images does.
func TestDockerfiles(t *testing.T) {
	t.Parallel()
	for _, s := range specs() {
		path := "../../images/" + strings.TrimPrefix(s.name, "headroom-") + ".Dockerfile"
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, err := range checkDockerfile(f, s) {
				t.Errorf("%s: %v", path, err)
			}
		})
	}
}

// TestDockerfileChecksCatch: the checks find what they are for.
func TestDockerfileChecksCatch(t *testing.T) {
	t.Parallel()
	s, _ := specByName("headroom-picker")
	good, err := os.ReadFile("../../images/picker.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, from, to, want string }{
		{"a tag only", "golang:1.26-bookworm@sha256:b305420a68d0f229d91eb3b3ed9e519fcf2cf5461da4bef997bf927e8c0bfd2b", "golang:1.26-bookworm", "not pinned"},
		{"latest", "golang:1.26-bookworm@sha256:b305420a68d0f229d91eb3b3ed9e519fcf2cf5461da4bef997bf927e8c0bfd2b", "debian:latest", "not pinned"},
		{"a variable", "golang:1.26-bookworm@sha256:b305420a68d0f229d91eb3b3ed9e519fcf2cf5461da4bef997bf927e8c0bfd2b", "${BASE}", "not pinned"},
		{"root", "USER 65532:65532", "USER root", "USER"},
		{"shell form", `ENTRYPOINT ["/usr/bin/headroom-picker"]`, "ENTRYPOINT /usr/bin/headroom-picker", "shell form"},
		{"unknown instruction", "WORKDIR /\n", "WORKDIR /\nFETCH x\n", "unknown instruction"},
		{"a label lost", `org.opencontainers.image.licenses="Apache-2.0" \`, `\`, "licenses"},
		{"a port lost", "EXPOSE 9002 9003 9004 9090", "EXPOSE 9002", "EXPOSE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(string(good), tt.from) {
				t.Fatalf("the Dockerfile no longer holds %q", tt.from)
			}
			bad := strings.Replace(string(good), tt.from, tt.to, 1)
			errs := checkDockerfile(strings.NewReader(bad), s)
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tt.want) }) {
				t.Errorf("errors %v, want one about %q", errs, tt.want)
			}
		})
	}
}
