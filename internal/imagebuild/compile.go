package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/headroom-dev/headroom/internal/version"
)

// compile builds one command for one platform, as the Makefile does, with
// the version stamped in, symbols stripped and the spec's build tags, and
// returns the binary.
func (o Options) compile(ctx context.Context, s spec, platform, arch string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, s.name)
	ldflags := "-s -w " + version.LDFlags(o.Version, o.Revision, o.Created.Format("2006-01-02T15:04:05Z"))
	args := []string{"build", "-trimpath", "-ldflags", ldflags}
	if len(s.tags) > 0 {
		args = append(args, "-tags", strings.Join(s.tags, ","))
	}
	cmd := exec.CommandContext(ctx, o.Go, append(args, "-o", out, s.pkg)...)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "GOFLAGS="+os.Getenv("GOFLAGS"))
	if s.cgo {
		cc := o.cc(platform)
		if _, err := exec.LookPath(cc); err != nil {
			return nil, fmt.Errorf("%s for %s needs cgo and the C compiler %s: %w (Debian: apt-get install gcc-%s; make images installs it as root)",
				s.name, platform, cc, err, strings.TrimSuffix(cc, "-gcc"))
		}
		cmd.Env = append(cmd.Env, "CGO_ENABLED=1", "CC="+cc)
		if os.Getenv("CGO_CFLAGS") == "" {
			// go-nvml's header marks functions deprecated; the warnings are noise.
			cmd.Env = append(cmd.Env, "CGO_CFLAGS=-O2 -g -Wno-deprecated-declarations")
		}
	} else {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for %s: %w\n%s", s.pkg, platform, err, stderr.Bytes())
	}
	return os.ReadFile(out)
}
