//go:build cgo

package image

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"sigs.k8s.io/yaml"

	"github.com/headroom-dev/headroom/internal/imagebuild"
)

// What the test build stamps in, so the checks know what to expect.
const (
	testVersion  = "v0.0.0-imagetest"
	testRevision = "0123456789abcdef0123456789abcdef01234567"
)

// image is one image under test: its index and this host's platform image.
type image struct {
	name, layout string
	index        v1.ImageIndex
	host         v1.Image
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for ; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if dir == filepath.Dir(dir) {
			t.Fatal("no go.mod above the working directory")
		}
	}
}

// chart is what the Helm chart expects of the images.
type chart struct {
	appVersion string
	repos      map[string]string // image name -> repository
}

func readChart(t *testing.T, root string) chart {
	t.Helper()
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	var v struct {
		Agent, Picker struct {
			Image struct {
				Repository, Tag string
			} `json:"image"`
		}
	}
	for path, into := range map[string]any{"Chart.yaml": &c, "values.yaml": &v} {
		b, err := os.ReadFile(filepath.Join(root, "charts", "headroom", path))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if v.Agent.Image.Tag != "" || v.Picker.Image.Tag != "" {
		t.Errorf("values.yaml sets an image tag: the default must be the chart's appVersion")
	}
	return chart{appVersion: c.AppVersion, repos: map[string]string{
		"headroom-agent": v.Agent.Image.Repository, "headroom-picker": v.Picker.Image.Repository,
	}}
}

// buildOptions builds for this host only, into out.
func buildOptions(root, out, tag string) imagebuild.Options {
	o := imagebuild.DefaultOptions()
	o.Root, o.Out, o.Cache = root, out, filepath.Join(root, ".cache", "debs")
	o.Platforms = []string{imagebuild.HostPlatform()}
	o.Tag, o.Version, o.Revision = tag, testVersion, testRevision
	o.Created = time.Unix(1767225600, 0).UTC() // 2026-01-01
	return o
}

func build(t *testing.T, o imagebuild.Options) []imagebuild.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := imagebuild.Build(ctx, o, testutil.Logger())
	if err != nil {
		t.Fatalf("building the images: %v", err)
	}
	t.Logf("built %d images for %s in %s", len(res), imagebuild.HostPlatform(), time.Since(start).Round(time.Second))
	return res
}

func load(t *testing.T, dir, name string) image {
	t.Helper()
	layout := filepath.Join(dir, name)
	idx, err := imagebuild.LayoutIndex(layout)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.Satisfies(want) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return image{name: name, layout: layout, index: idx, host: img}
		}
	}
	t.Fatalf("%s has no image for linux/%s", name, runtime.GOARCH)
	return image{}
}

// TestImages builds both images (or takes HEADROOM_TEST_IMAGES, the out
// folder of make images), then checks and runs each.
func TestImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both images; -short leaves it out")
	}
	root := repoRoot(t)
	ch := readChart(t, root)
	dir := os.Getenv("HEADROOM_TEST_IMAGES")
	wantRev := ""
	if dir == "" {
		dir = t.TempDir()
		build(t, buildOptions(root, dir, ch.appVersion))
		wantRev = testRevision
		t.Run("reproducible", func(t *testing.T) { checkReproducible(t, root, dir, ch.appVersion) })
	}
	for _, name := range []string{"headroom-agent", "headroom-picker"} {
		img := load(t, dir, name)
		t.Run(name+"/config", func(t *testing.T) { checkConfig(t, img, ch, wantRev) })
		t.Run(name+"/files", func(t *testing.T) { checkFiles(t, img) })
		t.Run(name+"/runs", func(t *testing.T) { checkRuns(t, img) })
		checkForeign(t, img)
	}
}

// checkReproducible builds again into a second folder: every index
// digest and every archive's bytes must be the same.
func checkReproducible(t *testing.T, root, first, tag string) {
	second := t.TempDir()
	build(t, buildOptions(root, second, tag))
	for _, name := range []string{"headroom-agent", "headroom-picker"} {
		a, b := fileHash(t, filepath.Join(first, name+".tar")), fileHash(t, filepath.Join(second, name+".tar"))
		if a != b {
			t.Errorf("%s.tar differs between two builds of the same tree: %s, %s", name, a, b)
		}
		da, _ := load(t, first, name).index.Digest()
		db, _ := load(t, second, name).index.Digest()
		if da != db {
			t.Errorf("%s: index digest %s, then %s", name, da, db)
		}
	}
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}
