//go:build cgo

package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// qemuUser is the user-mode emulator Debian's qemu-user-static installs
// for each architecture.
func qemuUser(arch string) string {
	return map[string]string{"amd64": "qemu-x86_64-static", "arm64": "qemu-aarch64-static"}[arch]
}

// checkForeign runs --version of every platform image the host cannot
// run natively under qemu's user-mode emulator, with the image's own root
// file system as the emulated loader's prefix (-L): the cross-compiled
// agent must start on the C library in its image. Needs root (to unpack
// with owners) and qemu-user-static; make test-images installs it.
func checkForeign(t *testing.T, img image) {
	m, err := img.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform == nil || d.Platform.Architecture == runtime.GOARCH {
			continue
		}
		arch := d.Platform.Architecture
		t.Run(img.name+"/"+arch+"/version", func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("unpacking an image needs root")
			}
			qemu, err := exec.LookPath(qemuUser(arch))
			if err != nil {
				t.Skipf("%s: %v (apt-get install qemu-user-static; make test-images does)", qemuUser(arch), err)
			}
			fimg, err := img.index.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := fimg.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			unpack(t, fimg, dir)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			entry := filepath.Join(dir, cfg.Config.Entrypoint[0])
			cmd := exec.CommandContext(ctx, qemu, "-L", dir, entry, "--version")
			cmd.Env = []string{}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version under %s: %v\n%s", img.name, qemu, err, out)
			}
			want := img.name + " " + cfg.Config.Labels["org.opencontainers.image.version"] + " ("
			if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "linux/"+arch) {
				t.Errorf("--version printed %q, want %q… linux/%s", out, want, arch)
			}
		})
	}
}
