package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrNotDeb is returned for a file that is not a Debian binary package.
var ErrNotDeb = errors.New("not a Debian package")

// readDeb calls fn for each entry of a .deb's data archive (the files it
// installs), in archive order. A .deb is an ar archive whose
// data.tar.{xz,gz,zst} member holds the files.
func readDeb(path string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	magic := make([]byte, 8)
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != "!<arch>\n" {
		return fmt.Errorf("%s: %w (no ar header)", path, ErrNotDeb)
	}
	for {
		name, size, err := arNext(r)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: %w (no data.tar member)", path, ErrNotDeb)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		member := io.LimitReader(r, size)
		if strings.HasPrefix(name, "data.tar") {
			if err := readDataTar(name, member, fn); err != nil {
				return fmt.Errorf("%s: %s: %w", path, name, err)
			}
			return nil
		}
		// Skip the member and its padding to an even offset.
		if _, err := io.CopyN(io.Discard, member, size); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if size%2 == 1 {
			if _, err := r.Discard(1); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
}

// arNext reads one ar member header: a 60-byte record holding the name
// (16 bytes) and the decimal size (10 bytes at offset 48).
func arNext(r io.Reader) (string, int64, error) {
	var h [60]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return "", 0, fmt.Errorf("truncated ar header: %w", ErrNotDeb)
		}
		return "", 0, err
	}
	if string(h[58:60]) != "`\n" {
		return "", 0, fmt.Errorf("bad ar member header: %w", ErrNotDeb)
	}
	name := strings.TrimRight(strings.TrimSpace(string(h[0:16])), "/")
	size, err := strconv.ParseInt(strings.TrimSpace(string(h[48:58])), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("ar member %q: bad size: %w", name, ErrNotDeb)
	}
	return name, size, nil
}

func readDataTar(name string, r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	var dec io.Reader
	switch {
	case strings.HasSuffix(name, ".xz"):
		x, err := xz.NewReader(r)
		if err != nil {
			return err
		}
		dec = x
	case strings.HasSuffix(name, ".gz"):
		g, err := gzip.NewReader(r)
		if err != nil {
			return err
		}
		defer g.Close()
		dec = g
	case strings.HasSuffix(name, ".zst"):
		z, err := zstd.NewReader(r)
		if err != nil {
			return err
		}
		defer z.Close()
		dec = z
	case name == "data.tar":
		dec = r
	default:
		return fmt.Errorf("unknown compression")
	}
	tr := tar.NewReader(dec)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

// debFiles reads the entries of a .deb that keep says to keep into t,
// under their cleaned absolute paths, with the package's modes and links.
func debFiles(t *Tree, path string, keep func(name string) bool) error {
	return readDeb(path, func(h *tar.Header, r io.Reader) error {
		name := cleanPath(h.Name)
		if name == "/" || !keep(name) {
			return nil
		}
		mode := h.FileInfo().Mode().Perm() | h.FileInfo().Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)
		switch h.Typeflag {
		case tar.TypeDir:
			t.Dir(name, mode)
		case tar.TypeSymlink:
			t.Symlink(name, h.Linkname)
		case tar.TypeLink:
			return t.Hardlink(name, cleanPath(h.Linkname))
		case tar.TypeReg:
			var b bytes.Buffer
			if _, err := io.Copy(&b, r); err != nil {
				return err
			}
			t.File(name, mode, b.Bytes())
		default:
			return fmt.Errorf("%s: unsupported entry type %q", name, h.Typeflag)
		}
		return nil
	})
}
