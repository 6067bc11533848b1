package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

func TestFetch(t *testing.T) {
	t.Parallel()
	body := []byte("a package")
	h := sha256.Sum256(body)
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/good.deb":
			_, _ = w.Write(body)
		case "/tampered.deb":
			_, _ = w.Write([]byte("a packagf"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	pkg := func(path string) Package {
		return Package{Name: "p", Version: "1", Size: int64(len(body)), SHA256: hex.EncodeToString(h[:]), URL: srv.URL + path}
	}
	f := Fetcher{Dir: t.TempDir(), Client: srv.Client()}
	ctx := context.Background()

	t.Run("download, then from the cache", func(t *testing.T) {
		path, err := f.Fetch(ctx, pkg("/good.deb"))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != string(body) {
			t.Errorf("cached %q", b)
		}
		before := hits.Load()
		if _, err := f.Fetch(ctx, pkg("/good.deb")); err != nil || hits.Load() != before {
			t.Errorf("second fetch: %v, %d requests (want none)", err, hits.Load()-before)
		}
	})
	t.Run("hash mismatch refused", func(t *testing.T) {
		f := Fetcher{Dir: t.TempDir(), Client: srv.Client()}
		if _, err := f.Fetch(ctx, pkg("/tampered.deb")); !errors.Is(err, ErrHashMismatch) {
			t.Fatalf("err = %v, want ErrHashMismatch", err)
		}
		if entries, _ := os.ReadDir(f.Dir); len(entries) != 0 {
			t.Errorf("a refused download stayed in the cache: %v", entries)
		}
	})
	t.Run("superseded version", func(t *testing.T) {
		f := Fetcher{Dir: t.TempDir(), Client: srv.Client()}
		if _, err := f.Fetch(ctx, pkg("/gone.deb")); err == nil || !strings.Contains(err.Error(), "make images-lock") {
			t.Fatalf("err = %v, want 404 with a pointer to make images-lock", err)
		}
	})
	t.Run("corrupted cache entry is fetched again", func(t *testing.T) {
		f := Fetcher{Dir: t.TempDir(), Client: srv.Client()}
		p := pkg("/good.deb")
		if err := os.WriteFile(f.Dir+"/"+p.SHA256+".deb", []byte("rotten!!!"), 0o644); err != nil {
			t.Fatal(err)
		}
		path, err := f.Fetch(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != string(body) {
			t.Errorf("cache holds %q after refetch", b)
		}
	})
}
