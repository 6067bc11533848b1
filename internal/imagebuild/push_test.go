package imagebuild

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPushToARegistry pushes a layout to a real registry implementation
// (go-containerregistry's, on loopback) and pulls the index back.
func TestPushToARegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	t.Setenv("REGISTRY_USERNAME", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())

	o := testOptions()
	s, _ := specByName("headroom-picker")
	dir := filepath.Join(t.TempDir(), s.name)
	idx := testIndex(t, o, s)
	ref := u.Host + "/headroom-dev/headroom-picker:0.1.0"
	if err := writeLayout(dir, idx, ref, "0.1.0"); err != nil {
		t.Fatal(err)
	}
	d, err := Push(context.Background(), dir, ref, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := mustDigest(t, idx); d != want {
		t.Errorf("pushed %s, built %s", d, want)
	}
	r, _ := name.ParseReference(ref, name.Insecure)
	pulled, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustDigest(t, pulled); got != d {
		t.Errorf("registry serves %s for the tag, pushed %s", got, d)
	}
	m, _ := pulled.IndexManifest()
	for _, desc := range m.Manifests {
		if _, err := pulled.Image(desc.Digest); err != nil {
			t.Errorf("platform %s not pullable: %v", desc.Platform, err)
		}
	}
	if _, err := Push(context.Background(), t.TempDir(), ref, true); err == nil {
		t.Error("pushing an empty folder succeeded")
	}
}

func TestLogin(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("REGISTRY_USERNAME", "")
	t.Setenv("REGISTRY_PASSWORD", "")
	if _, err := Login("ghcr.io"); err == nil {
		t.Fatal("login without credentials succeeded")
	}
	t.Setenv("REGISTRY_USERNAME", "bot")
	t.Setenv("REGISTRY_PASSWORD", "s3cret")
	file, err := Login("ghcr.io")
	if err != nil {
		t.Fatal(err)
	}
	if file != filepath.Join(dir, "config.json") {
		t.Errorf("wrote %s", file)
	}
	b, _ := os.ReadFile(file)
	var cfg struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Auths["ghcr.io"].Auth == "" {
		t.Fatalf("config.json = %s (%v)", b, err)
	}
	r, _ := name.ParseReference("ghcr.io/headroom-dev/headroom-agent:0.1.0")
	auth, err := Credentials(r)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.Authorization()
	if err != nil || a.Username != "bot" || a.Password != "s3cret" {
		t.Errorf("credentials = %+v, %v", a, err)
	}
	t.Setenv("REGISTRY_USERNAME", "")
	if auth, _ = Credentials(r); auth == nil {
		t.Fatal("no credentials from the Docker configuration")
	}
	if a, _ = auth.Authorization(); !strings.EqualFold(a.Username, "bot") {
		t.Errorf("from the Docker configuration: %+v", a)
	}
}
