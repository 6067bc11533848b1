package imagebuild

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Tree is the file system of one layer, built in memory: every entry
// owned by root unless said otherwise, parents created as 0755
// directories. Its tar is the same bytes for the same content: entries
// sorted by path, one fixed time, no user or group names.
type Tree struct {
	entries map[string]*entry
}

type entry struct {
	typ      byte // tar.TypeReg, TypeDir, TypeSymlink, TypeLink
	mode     fs.FileMode
	uid, gid int
	data     []byte
	link     string
}

// NewTree returns an empty tree.
func NewTree() *Tree { return &Tree{entries: map[string]*entry{}} }

func cleanPath(name string) string { return path.Clean("/" + strings.TrimPrefix(name, "./")) }

func (t *Tree) put(name string, e *entry) {
	name = cleanPath(name)
	for dir := path.Dir(name); dir != "/"; dir = path.Dir(dir) {
		if _, ok := t.entries[dir]; !ok {
			t.entries[dir] = &entry{typ: tar.TypeDir, mode: 0o755}
		}
	}
	t.entries[name] = e
}

// File adds a regular file.
func (t *Tree) File(name string, mode fs.FileMode, data []byte) {
	t.put(name, &entry{typ: tar.TypeReg, mode: mode, data: data})
}

// Dir adds a directory (or sets the mode of one already there).
func (t *Tree) Dir(name string, mode fs.FileMode) { t.DirOwned(name, mode, 0, 0) }

// DirOwned adds a directory owned by uid:gid.
func (t *Tree) DirOwned(name string, mode fs.FileMode, uid, gid int) {
	t.put(name, &entry{typ: tar.TypeDir, mode: mode, uid: uid, gid: gid})
}

// Symlink adds a symbolic link to target.
func (t *Tree) Symlink(name, target string) {
	t.put(name, &entry{typ: tar.TypeSymlink, mode: 0o777, link: target})
}

// Hardlink adds a hard link to a regular file already in the tree.
func (t *Tree) Hardlink(name, target string) error {
	e, ok := t.entries[cleanPath(target)]
	if !ok || e.typ != tar.TypeReg {
		return fmt.Errorf("hard link %s: target %s is not a file in the tree", name, target)
	}
	t.put(name, &entry{typ: tar.TypeLink, mode: e.mode, link: cleanPath(target)})
	return nil
}

// Lookup returns a regular file's contents.
func (t *Tree) Lookup(name string) ([]byte, bool) {
	e, ok := t.entries[cleanPath(name)]
	if !ok || e.typ != tar.TypeReg {
		return nil, false
	}
	return e.data, true
}

// Paths returns every path, sorted.
func (t *Tree) Paths() []string {
	out := make([]string, 0, len(t.entries))
	for p := range t.entries {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Tar writes the tree as a tar stream, every entry stamped with mtime.
func (t *Tree) Tar(w io.Writer, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, p := range t.Paths() {
		e := t.entries[p]
		h := &tar.Header{
			Typeflag: e.typ, Name: strings.TrimPrefix(p, "/"), Mode: int64(e.mode.Perm()),
			Uid: e.uid, Gid: e.gid, ModTime: mtime,
		}
		if e.mode&fs.ModeSetuid != 0 {
			h.Mode |= 0o4000
		}
		if e.mode&fs.ModeSetgid != 0 {
			h.Mode |= 0o2000
		}
		if e.mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000
		}
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeReg:
			h.Size = int64(len(e.data))
		case tar.TypeSymlink:
			h.Linkname = e.link
		case tar.TypeLink:
			h.Linkname = strings.TrimPrefix(e.link, "/")
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar %s: %w", p, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				return fmt.Errorf("tar %s: %w", p, err)
			}
		}
	}
	return tw.Close()
}

// WriteDir writes the tree under dir as the files it describes: modes,
// links and owners (owners only when running as root).
func (t *Tree) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, p := range t.Paths() {
		e := t.entries[p]
		dst := filepath.Join(dir, filepath.FromSlash(p))
		var err error
		switch e.typ {
		case tar.TypeDir:
			err = os.Mkdir(dst, 0o700)
		case tar.TypeReg:
			err = os.WriteFile(dst, e.data, 0o600)
		case tar.TypeSymlink:
			err = os.Symlink(e.link, dst)
		case tar.TypeLink:
			err = os.Link(filepath.Join(dir, filepath.FromSlash(e.link)), dst)
		}
		if err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(dst, e.uid, e.gid); err != nil {
				return err
			}
		}
		if e.typ != tar.TypeSymlink {
			if err := os.Chmod(dst, e.mode); err != nil {
				return err
			}
		}
	}
	return nil
}

// Size is the sum of the regular files' sizes.
func (t *Tree) Size() int64 {
	var n int64
	for _, e := range t.entries {
		if e.typ == tar.TypeReg {
			n += int64(len(e.data))
		}
	}
	return n
}

// Layer is the tree as an OCI layer (gzip-compressed tar).
func (t *Tree) Layer(mtime time.Time) (v1.Layer, error) {
	var b bytes.Buffer
	if err := t.Tar(&b, mtime); err != nil {
		return nil, err
	}
	raw := b.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}
