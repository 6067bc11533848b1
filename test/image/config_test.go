//go:build cgo

package image

import (
	"archive/tar"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// sizeBudget is an image's budget of uncompressed file bytes (MB = 10^6).
// The agent's is the goal, 60 MB. The picker's goal is 25 MB; it
// is 21.4 MB (docs/images.md: Picker size), so its budget is that and a
// small margin, to catch growth well before the goal.
func sizeBudget(name string) int64 {
	if name == "headroom-picker" {
		return 23e6
	}
	return 60e6
}

// ociLabels must be on every image config, manifest and index.
func ociLabels() []string {
	return []string{"source", "revision", "version", "licenses", "created"}
}

func checkConfig(t *testing.T, img image, ch chart, wantRev string) {
	cfg, err := img.host.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cfg.OS, cfg.Architecture, runtime.GOARCH)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", cfg.Config.User)
	}
	if want := []string{"/usr/bin/" + img.name}; !slices.Equal(cfg.Config.Entrypoint, want) || len(cfg.Config.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q, want %q and no cmd", cfg.Config.Entrypoint, cfg.Config.Cmd, want)
	}
	labels := cfg.Config.Labels
	for _, k := range ociLabels() {
		if labels["org.opencontainers.image."+k] == "" {
			t.Errorf("label org.opencontainers.image.%s missing", k)
		}
	}
	if l := labels["org.opencontainers.image.licenses"]; l != "Apache-2.0" {
		t.Errorf("licenses label %q, want Apache-2.0", l)
	}
	if wantRev != "" && labels["org.opencontainers.image.revision"] != wantRev {
		t.Errorf("revision label %q, want %q", labels["org.opencontainers.image.revision"], wantRev)
	}
	if c, err := time.Parse(time.RFC3339, labels["org.opencontainers.image.created"]); err != nil || !c.Equal(cfg.Created.Time) {
		t.Errorf("created label %q, config created %s: want the same RFC 3339 time", labels["org.opencontainers.image.created"], cfg.Created)
	}
	manifest, err := img.host.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	index, err := img.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ociLabels() {
		k = "org.opencontainers.image." + k
		if manifest.Annotations[k] != labels[k] || index.Annotations[k] != labels[k] {
			t.Errorf("annotation %s: manifest %q, index %q, config label %q", k, manifest.Annotations[k], index.Annotations[k], labels[k])
		}
	}
	checkName(t, img, ch)
	checkSize(t, img)
}

// checkName: the layout names the image exactly as the chart's default
// values refer to it, so an archive loaded into a node satisfies them.
func checkName(t *testing.T, img image, ch chart) {
	top, err := imageLayoutIndex(img.layout)
	if err != nil {
		t.Fatal(err)
	}
	want := ch.repos[img.name] + ":" + ch.appVersion
	if got := top["io.containerd.image.name"]; got != want {
		t.Errorf("archive names the image %q; the chart's default values pull %q", got, want)
	}
	if got := top["org.opencontainers.image.ref.name"]; got != ch.appVersion {
		t.Errorf("archive's ref.name %q, want the chart's appVersion %q", got, ch.appVersion)
	}
}

func checkSize(t *testing.T, img image) {
	var size int64
	for _, f := range listFiles(t, img.host) {
		if f.typ == tar.TypeReg {
			size += f.size
		}
	}
	t.Logf("%s linux/%s: %.1f MB of files (budget %.0f MB)", img.name, runtime.GOARCH, float64(size)/1e6, float64(sizeBudget(img.name))/1e6)
	if size > sizeBudget(img.name) {
		t.Errorf("%s is %.1f MB uncompressed, over its %.0f MB budget", img.name, float64(size)/1e6, float64(sizeBudget(img.name))/1e6)
	}
}

// checkFiles: no shell anywhere, the entrypoint the only program, the CA
// bundle and the user database in place, a C library only in the agent.
func checkFiles(t *testing.T, img image) {
	files := listFiles(t, img.host)
	entry := "/usr/bin/" + img.name
	if f, ok := files[entry]; !ok || f.typ != tar.TypeReg || f.mode&0o111 == 0 {
		t.Errorf("%s missing or not executable", entry)
	}
	for p, f := range files {
		switch base := path.Base(p); {
		case slices.Contains([]string{"sh", "bash", "dash", "ash", "busybox", "zsh"}, base):
			t.Errorf("%s: a shell in the image", p)
		case f.typ == tar.TypeReg && f.mode&0o111 != 0 && p != entry && !sharedLibrary(p):
			t.Errorf("%s: an executable other than the entrypoint", p)
		case f.uid != 0 && p != "/tmp":
			t.Errorf("%s owned by uid %d, want root", p, f.uid)
		}
	}
	if f, ok := files["/tmp"]; !ok || f.mode&0o1777 != 0o1777 {
		t.Errorf("/tmp missing or not 1777")
	}
	checkCABundle(t, img)
	passwd := string(fileContents(t, img, "/etc/passwd"))
	if !strings.Contains(passwd, "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user 65532:\n%s", passwd)
	}
	if len(fileContents(t, img, "/usr/share/doc/headroom/LICENSE")) == 0 {
		t.Error("no LICENSE")
	}
	_, libc := files[libcPath()]
	if want := img.name == "headroom-agent"; libc != want {
		t.Errorf("C library %s present = %v, want %v (the agent is built with cgo, the picker is static)", libcPath(), libc, want)
	}
}

// sharedLibrary: the C library's shared objects carry execute bits.
func sharedLibrary(p string) bool {
	return (strings.HasPrefix(p, "/lib/") || strings.HasPrefix(p, "/usr/lib/")) && strings.Contains(path.Base(p), ".so")
}

func libcPath() string {
	triple := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[runtime.GOARCH]
	return "/lib/" + triple + "/libc.so.6"
}

func checkCABundle(t *testing.T, img image) {
	rest := fileContents(t, img, "/etc/ssl/certs/ca-certificates.crt")
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Errorf("CA bundle certificate %d: %v", n, err)
		}
		n++
	}
	if n < 100 {
		t.Errorf("CA bundle has %d certificates, want Debian's full set (over 100)", n)
	}
}

// fileContents reads one regular file of the image.
func fileContents(t *testing.T, img image, name string) []byte {
	t.Helper()
	rc := mutate.Extract(img.host)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in the image (%v)", name, err)
		}
		if "/"+strings.TrimPrefix(h.Name, "./") == name && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// imageLayoutIndex returns the annotations of the layout's only entry.
func imageLayoutIndex(dir string) (map[string]string, error) {
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("%s: %d entries, want 1", dir, len(m.Manifests))
	}
	return m.Manifests[0].Annotations, nil
}
