package satoken

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
)

func newSource(path string, interval time.Duration) (*Source, *testutil.Clock) {
	s := New(Options{Path: path, RecheckInterval: interval})
	c := testutil.NewClock(time.Unix(1_800_000_000, 0))
	s.now = c.Now
	return s, c
}

// write replaces the content of path in place, with a distinct mtime so
// the change is seen whatever the file system's timestamp granularity.
func write(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func wantToken(t *testing.T, s *Source, want string) {
	t.Helper()
	got, err := s.Token()
	if err != nil || got != want {
		t.Fatalf("Token() = %q, %v; want %q", got, err, want)
	}
}

func TestTokenFollowsInPlaceWrites(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	write(t, path, "first\n", time.Unix(100, 0))
	s, _ := newSource(path, 0)
	wantToken(t, s, "first")
	write(t, path, "second", time.Unix(200, 0))
	wantToken(t, s, "second")
}

// The kubelet updates a projected volume by writing a new timestamped
// directory and swapping the ..data symlink; the token file is a symlink
// through ..data.
func TestTokenFollowsKubeletSymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mtime := time.Unix(100, 0) // the same for both versions: only the inode differs
	for _, v := range []string{"..v1", "..v2"} {
		if err := os.Mkdir(filepath.Join(dir, v), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, v, "token"), "token-"+v[2:], mtime)
	}
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..data", "token"), filepath.Join(dir, "token")); err != nil {
		t.Fatal(err)
	}
	s, _ := newSource(filepath.Join(dir, "token"), 0)
	wantToken(t, s, "token-v1")

	tmp := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink("..v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	wantToken(t, s, "token-v2")
}

func TestTokenRecheckInterval(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	write(t, path, "first", time.Unix(100, 0))
	s, c := newSource(path, time.Minute)
	wantToken(t, s, "first")
	write(t, path, "second", time.Unix(200, 0))
	c.Add(time.Minute - time.Second)
	wantToken(t, s, "first") // not checked again yet
	c.Add(time.Second)
	wantToken(t, s, "second")
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	write(t, empty, " \n", time.Unix(100, 0))
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"empty", empty, "empty file"},
		{"directory", dir, "is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := newSource(tc.path, 0)
			if tok, err := s.Token(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Token() = %q, %v; want an error with %q", tok, err, tc.want)
			}
		})
	}
}

func TestTokenKeptWhenFileVanishes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "token")
	write(t, path, "first", time.Unix(100, 0))
	s, _ := newSource(path, 0)
	wantToken(t, s, "first")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	wantToken(t, s, "first")
}

func TestDefaultPath(t *testing.T) {
	t.Parallel()
	if got := New(Options{}).opts.Path; got != DefaultPath {
		t.Fatalf("path = %q, want %q", got, DefaultPath)
	}
}
