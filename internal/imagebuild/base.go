package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// caBundle is where Go (and OpenSSL on Debian) look for the CA bundle.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// baseTree assembles an image's base layer for a Debian architecture:
// the files of images/rootfs (passwd, group, nsswitch.conf), /tmp, the
// CA bundle built from the locked ca-certificates package and, with
// libc, the locked libc6 and images/rootfs-libc. It returns the packages
// it used.
func (o Options) baseTree(ctx context.Context, lock Lock, arch string, libc bool) (*Tree, []Package, error) {
	t := NewTree()
	t.Dir("/tmp", 0o777|fs.ModeSticky)
	dirs := []string{filepath.Join(o.Root, "images", "rootfs")}
	if libc {
		dirs = append(dirs, filepath.Join(o.Root, "images", "rootfs-libc"))
	}
	for _, d := range dirs {
		if err := copyDir(t, d); err != nil {
			return nil, nil, err
		}
	}
	f := Fetcher{Dir: o.Cache}
	ca, err := lock.Find("ca-certificates", arch)
	if err != nil {
		return nil, nil, err
	}
	used := []Package{ca}
	debPath, err := f.Fetch(ctx, ca)
	if err != nil {
		return nil, nil, err
	}
	if err := addCABundle(t, debPath); err != nil {
		return nil, nil, fmt.Errorf("ca-certificates: %w", err)
	}
	if libc {
		p, err := lock.Find("libc6", arch)
		if err != nil {
			return nil, nil, err
		}
		used = append(used, p)
		if debPath, err = f.Fetch(ctx, p); err != nil {
			return nil, nil, err
		}
		if err := debFiles(t, debPath, keepRuntime("libc6")); err != nil {
			return nil, nil, fmt.Errorf("libc6: %w", err)
		}
	}
	return t, used, nil
}

// keepRuntime keeps what a package needs at run time and its copyright
// notice: no other documentation, no lintian overrides, no iconv modules.
func keepRuntime(pkg string) func(string) bool {
	return func(name string) bool {
		switch {
		case name == "/usr/share/doc/"+pkg+"/copyright":
			return true
		case strings.HasPrefix(name, "/usr/share/doc"), strings.HasPrefix(name, "/usr/share/lintian"), strings.HasPrefix(name, "/usr/share/man"):
			return false
		case strings.Contains(name, "/gconv"):
			// iconv's character-set modules (8 MB): nothing in headroom or
			// the NVIDIA libraries converts character sets.
			return false
		}
		return true
	}
}

// addCABundle writes the CA bundle as update-ca-certificates would with
// every certificate of the package enabled (its default): each
// /usr/share/ca-certificates/**/*.crt in path order, each ending in a
// newline. The package's copyright notice comes along.
func addCABundle(t *Tree, debPath string) error {
	src := NewTree()
	if err := debFiles(src, debPath, func(name string) bool {
		return strings.HasPrefix(name, "/usr/share/ca-certificates/") || name == "/usr/share/doc/ca-certificates/copyright"
	}); err != nil {
		return err
	}
	var certs []string
	for _, p := range src.Paths() {
		if strings.HasSuffix(p, ".crt") {
			certs = append(certs, p)
		}
	}
	if len(certs) == 0 {
		return fmt.Errorf("no certificates under /usr/share/ca-certificates")
	}
	sort.Strings(certs)
	var bundle bytes.Buffer
	for _, p := range certs {
		b, _ := src.Lookup(p)
		bundle.Write(b)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			bundle.WriteByte('\n')
		}
	}
	t.File(caBundle, 0o644, bundle.Bytes())
	if b, ok := src.Lookup("/usr/share/doc/ca-certificates/copyright"); ok {
		t.File("/usr/share/doc/ca-certificates/copyright", 0o644, b)
	}
	return nil
}

// copyDir adds a folder of the repository to the tree at /: files 0644
// (0755 when executable), folders 0755, owned by root whatever the
// checkout's modes and owners, so every checkout builds the same layer.
func copyDir(t *Tree, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		name := path.Join("/", filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			t.Dir(name, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if info, err := d.Info(); err == nil && info.Mode()&0o111 != 0 {
				mode = 0o755
			}
			t.File(name, mode, b)
		default:
			return fmt.Errorf("%s: only files and folders belong in an image's rootfs", p)
		}
		return nil
	})
}
