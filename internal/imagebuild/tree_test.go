package imagebuild

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTreeTarIsDeterministic(t *testing.T) {
	t.Parallel()
	mtime := time.Unix(1700000000, 0)
	a, b := NewTree(), NewTree()
	a.File("/usr/bin/x", 0o755, []byte("x"))
	a.Dir("/tmp", 0o777|fs.ModeSticky)
	a.Symlink("/lib64/ld.so", "/lib/ld.so")
	b.Symlink("/lib64/ld.so", "/lib/ld.so")
	b.Dir("/tmp", 0o777|fs.ModeSticky)
	b.File("usr/bin/x", 0o755, []byte("x"))
	var ta, tb bytes.Buffer
	if err := a.Tar(&ta, mtime); err != nil {
		t.Fatal(err)
	}
	if err := b.Tar(&tb, mtime); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ta.Bytes(), tb.Bytes()) {
		t.Fatal("same tree, different insertion order: different tar bytes")
	}
	la, _ := a.Layer(mtime)
	lb, _ := b.Layer(mtime)
	da, _ := la.Digest()
	db, _ := lb.Digest()
	if da != db {
		t.Errorf("layer digests differ: %s %s", da, db)
	}

	tr := tar.NewReader(&ta)
	want := []struct {
		name string
		typ  byte
		mode int64
	}{
		{"lib64/", tar.TypeDir, 0o755}, {"lib64/ld.so", tar.TypeSymlink, 0o777}, {"tmp/", tar.TypeDir, 0o1777},
		{"usr/", tar.TypeDir, 0o755}, {"usr/bin/", tar.TypeDir, 0o755}, {"usr/bin/x", tar.TypeReg, 0o755},
	}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if err == io.EOF {
			if i != len(want) {
				t.Errorf("%d entries, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(want) || h.Name != want[i].name || h.Typeflag != want[i].typ || h.Mode != want[i].mode ||
			!h.ModTime.Equal(mtime) || h.Uid != 0 || h.Uname != "" {
			t.Errorf("entry %d: %s %c %o %s uid %d", i, h.Name, h.Typeflag, h.Mode, h.ModTime, h.Uid)
		}
	}
}

func TestHardlinkNeedsAFile(t *testing.T) {
	t.Parallel()
	tr := NewTree()
	tr.Dir("/d", 0o755)
	if err := tr.Hardlink("/x", "/d"); err == nil {
		t.Error("hard link to a folder accepted")
	}
	if err := tr.Hardlink("/x", "/missing"); err == nil {
		t.Error("hard link to nothing accepted")
	}
}

func TestTarDirIsDeterministic(t *testing.T) {
	t.Parallel()
	mtime := time.Unix(1700000000, 0)
	var sums [2][]byte
	for i := range sums {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"index.json", "oci-layout", "blobs/sha256/ab"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(f), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(t.TempDir(), "x.tar")
		if err := tarDir(dir, out, mtime); err != nil {
			t.Fatal(err)
		}
		sums[i], _ = os.ReadFile(out)
	}
	if !bytes.Equal(sums[0], sums[1]) {
		t.Error("two folders with the same files gave different tars")
	}
}

func TestWriteDir(t *testing.T) {
	t.Parallel()
	tr := NewTree()
	tr.File("/usr/bin/x", 0o755, []byte("x"))
	tr.File("/etc/passwd", 0o644, []byte("p"))
	tr.Dir("/tmp", 0o777|fs.ModeSticky)
	tr.Symlink("/lib64/ld.so", "/lib/ld.so")
	if err := tr.Hardlink("/usr/bin/y", "/usr/bin/x"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := tr.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{"usr/bin/x": 0o755, "usr/bin/y": 0o755, "etc/passwd": 0o644, "tmp": fs.ModeDir | fs.ModeSticky | 0o777} {
		info, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %s, want %s", p, info.Mode(), want)
		}
	}
	if l, err := os.Readlink(filepath.Join(dir, "lib64/ld.so")); err != nil || l != "/lib/ld.so" {
		t.Errorf("symlink -> %q, %v", l, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "usr/bin/y")); string(b) != "x" {
		t.Errorf("hard link holds %q", b)
	}
}
