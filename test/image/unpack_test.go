//go:build cgo

package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// file is one entry of an image's flattened file system.
type file struct {
	typ  byte
	mode int64
	uid  int
	size int64
	link string
}

// listFiles returns every path of img's flattened file system.
func listFiles(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out["/"+strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = file{typ: h.Typeflag, mode: h.Mode, uid: h.Uid, size: h.Size, link: h.Linkname}
	}
}

// unpack writes img's flattened file system under dir, owners and modes
// kept, as a container runtime would.
func unpack(t *testing.T, img v1.Image, dir string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := unpackEntry(dir, h, tr); err != nil {
			t.Fatal(err)
		}
	}
}

func unpackEntry(dir string, h *tar.Header, r io.Reader) error {
	name := filepath.Clean("/" + h.Name)
	if strings.Contains(name, "..") {
		return fmt.Errorf("unsafe path %q", h.Name)
	}
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	mode := os.FileMode(h.Mode & 0o777)
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(p, mode); err != nil {
			return err
		}
	case tar.TypeReg:
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(h.Linkname, p); err != nil {
			return err
		}
		return os.Lchown(p, h.Uid, h.Gid)
	case tar.TypeLink:
		if err := os.Link(filepath.Join(dir, filepath.Clean("/"+h.Linkname)), p); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%s: entry type %q", h.Name, h.Typeflag)
	}
	if err := os.Chown(p, h.Uid, h.Gid); err != nil {
		return err
	}
	// Chmod after chown: chown clears set-id bits. Sticky and set-id bits
	// come from the full mode.
	m := mode
	if h.Mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	if h.Mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if h.Mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	return os.Chmod(p, m)
}
