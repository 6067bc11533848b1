package imagebuild

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func testOptions() Options {
	o := DefaultOptions()
	o.Tag, o.Version, o.Revision, o.Created = "0.1.0", "v0.1.0", "abc", time.Unix(1767225600, 0).UTC()
	return o
}

// testIndex assembles a two-platform index of s from tiny trees, the way
// Build does after compiling.
func testIndex(t *testing.T, o Options, s spec) v1.ImageIndex {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range []string{"amd64", "arm64"} {
		base, app := NewTree(), NewTree()
		base.File("/etc/passwd", 0o644, []byte("nonroot:x:65532:65532::/:/sbin/nologin\n"))
		app.File(s.entrypoint(), 0o755, []byte("binary for "+arch))
		img, err := o.assemble(s, arch, base, app, []Package{{Name: "libc6", Version: "2.36"}})
		if err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.Annotations(idx, o.labels(s)).(v1.ImageIndex)
}

func TestAssemble(t *testing.T) {
	t.Parallel()
	o := testOptions()
	s, _ := specByName("headroom-picker")
	idx := testIndex(t, o, s)
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIImageIndex || len(m.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests", m.MediaType, len(m.Manifests))
	}
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Config
		if c.User != "65532:65532" || !slices.Equal(c.Entrypoint, []string{"/usr/bin/headroom-picker"}) || cfg.Architecture != d.Platform.Architecture {
			t.Errorf("%s: user %q entrypoint %q arch %s", d.Platform, c.User, c.Entrypoint, cfg.Architecture)
		}
		if _, ok := c.ExposedPorts["9003/tcp"]; !ok {
			t.Errorf("%s: ports %v lack the health port", d.Platform, c.ExposedPorts)
		}
		for k, want := range map[string]string{
			"org.opencontainers.image.revision": "abc", "org.opencontainers.image.version": "v0.1.0",
			"org.opencontainers.image.licenses": "Apache-2.0", "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
			"org.opencontainers.image.source": "https://github.com/headroom-dev/headroom",
		} {
			if c.Labels[k] != want || m.Annotations[k] != want {
				t.Errorf("%s: %s label %q annotation %q, want %q", d.Platform, k, c.Labels[k], m.Annotations[k], want)
			}
		}
		if !cfg.Created.Time.Equal(o.Created) || len(cfg.History) != 2 || !cfg.History[1].Created.Time.Equal(o.Created) {
			t.Errorf("%s: created %s, history %v: want every time stamp the commit's", d.Platform, cfg.Created, cfg.History)
		}
	}
	again, _ := testIndex(t, o, s).Digest()
	if first, _ := idx.Digest(); first != again {
		t.Errorf("same inputs, digests %s and %s", first, again)
	}
}

func TestWriteLayoutNamesTheImage(t *testing.T) {
	t.Parallel()
	o := testOptions()
	s, _ := specByName("headroom-agent")
	dir := filepath.Join(t.TempDir(), "headroom-agent")
	idx := testIndex(t, o, s)
	if err := writeLayout(dir, idx, "ghcr.io/headroom-dev/headroom-agent:0.1.0", "0.1.0"); err != nil {
		t.Fatal(err)
	}
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := top.IndexManifest()
	if len(m.Manifests) != 1 || m.Manifests[0].Annotations["io.containerd.image.name"] != "ghcr.io/headroom-dev/headroom-agent:0.1.0" ||
		m.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "0.1.0" {
		t.Fatalf("index.json: %+v", m.Manifests)
	}
	got, err := LayoutIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustDigest(t, got), mustDigest(t, idx); a != b {
		t.Errorf("layout holds %s, built %s", a, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Error(err)
	}
}

func mustDigest(t *testing.T, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		edit func(*Options)
		ok   bool
	}{
		{"defaults with a tag and a time", func(*Options) {}, true},
		{"no tag", func(o *Options) { o.Tag = "" }, false},
		{"tag with a colon", func(o *Options) { o.Tag = "a:b" }, false},
		{"unknown image", func(o *Options) { o.Images = []string{"headroom-demo"} }, false},
		{"unknown platform", func(o *Options) { o.Platforms = []string{"linux/riscv64"} }, false},
		{"no time", func(o *Options) { o.Created = time.Time{} }, false},
		{"version with a space", func(o *Options) { o.Version = "v1 x" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := testOptions()
			tt.edit(&o)
			if err := o.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := Build(context.Background(), Options{}, nil); err == nil {
		t.Error("Build with empty options did not fail")
	}
}
