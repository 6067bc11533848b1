package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// debEntry is one file of a test package.
type debEntry struct {
	name, data, link string
	typ              byte
	mode             int64
}

// writeDeb writes a Debian package whose data member is compressed with
// comp (xz, gz or none), as dpkg-deb lays it out.
func writeDeb(t *testing.T, dir, comp string, entries []debEntry) string {
	t.Helper()
	var data bytes.Buffer
	tw := tar.NewWriter(&data)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.data)), Linkname: e.link}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			_, _ = tw.Write([]byte(e.data))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var member bytes.Buffer
	name := "data.tar"
	switch comp {
	case "xz":
		name += ".xz"
		w, err := xz.NewWriter(&member)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write(data.Bytes())
		_ = w.Close()
	case "gz":
		name += ".gz"
		w := gzip.NewWriter(&member)
		_, _ = w.Write(data.Bytes())
		_ = w.Close()
	default:
		member = data
	}
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		body []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", []byte("odd")}, {name, member.Bytes()}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m.name, 0, 0, 0, "100644", len(m.body))
		ar.Write(m.body)
		if len(m.body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	path := filepath.Join(dir, "p-"+comp+".deb")
	if err := os.WriteFile(path, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sampleEntries() []debEntry {
	return []debEntry{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "./lib/x86_64-linux-gnu/", typ: tar.TypeDir, mode: 0o755},
		{name: "./lib/x86_64-linux-gnu/libc.so.6", typ: tar.TypeReg, mode: 0o755, data: "ELF"},
		{name: "./lib64/ld-linux-x86-64.so.2", typ: tar.TypeSymlink, link: "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"},
		{name: "./usr/share/doc/libc6/copyright", typ: tar.TypeReg, mode: 0o644, data: "(c)"},
		{name: "./usr/share/doc/libc6/changelog.Debian.gz", typ: tar.TypeReg, mode: 0o644, data: "log"},
		{name: "./usr/share/lintian/overrides/libc6", typ: tar.TypeReg, mode: 0o644, data: "x"},
		{name: "./usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", typ: tar.TypeReg, mode: 0o644, data: "x"},
		{name: "./usr/bin/hard", typ: tar.TypeLink, link: "./lib/x86_64-linux-gnu/libc.so.6"},
	}
}

func TestDebFiles(t *testing.T) {
	t.Parallel()
	for _, comp := range []string{"xz", "gz", "none"} {
		t.Run(comp, func(t *testing.T) {
			t.Parallel()
			tree := NewTree()
			if err := debFiles(tree, writeDeb(t, t.TempDir(), comp, sampleEntries()), keepRuntime("libc6")); err != nil {
				t.Fatal(err)
			}
			want := "/lib /lib/x86_64-linux-gnu /lib/x86_64-linux-gnu/libc.so.6 /lib64 /lib64/ld-linux-x86-64.so.2 " +
				"/usr /usr/bin /usr/bin/hard /usr/share /usr/share/doc /usr/share/doc/libc6 /usr/share/doc/libc6/copyright"
			if got := strings.Join(tree.Paths(), " "); got != want {
				t.Errorf("paths\n got %s\nwant %s", got, want)
			}
			if b, ok := tree.Lookup("/lib/x86_64-linux-gnu/libc.so.6"); !ok || string(b) != "ELF" {
				t.Errorf("libc.so.6 = %q", b)
			}
		})
	}
}

func TestNotADeb(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"text":       "hello",
		"truncated":  "!<arch>\ndebian-binary   0",
		"no data":    "!<arch>\n",
		"bad header": "!<arch>\n" + strings.Repeat("x", 60),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			err := readDeb(p, func(*tar.Header, io.Reader) error { return nil })
			if !errors.Is(err, ErrNotDeb) {
				t.Errorf("err = %v, want ErrNotDeb", err)
			}
		})
	}
}

func TestCABundle(t *testing.T) {
	t.Parallel()
	deb := writeDeb(t, t.TempDir(), "xz", []debEntry{
		{name: "./usr/share/ca-certificates/mozilla/B.crt", typ: tar.TypeReg, mode: 0o644, data: "B\n"},
		{name: "./usr/share/ca-certificates/mozilla/A.crt", typ: tar.TypeReg, mode: 0o644, data: "A"}, // no newline
		{name: "./usr/share/ca-certificates/mozilla/README", typ: tar.TypeReg, mode: 0o644, data: "not a cert"},
		{name: "./usr/sbin/update-ca-certificates", typ: tar.TypeReg, mode: 0o755, data: "#!/bin/sh"},
		{name: "./usr/share/doc/ca-certificates/copyright", typ: tar.TypeReg, mode: 0o644, data: "(c)"},
	})
	tree := NewTree()
	if err := addCABundle(tree, deb); err != nil {
		t.Fatal(err)
	}
	if b, _ := tree.Lookup(caBundle); string(b) != "A\nB\n" {
		t.Errorf("bundle = %q, want the certificates in path order, each ending in a newline", b)
	}
	if got := strings.Join(tree.Paths(), " "); strings.Contains(got, "sbin") || !strings.Contains(got, "copyright") {
		t.Errorf("tree = %s: want the bundle and the copyright only", got)
	}
	empty := writeDeb(t, t.TempDir(), "gz", nil)
	if err := addCABundle(NewTree(), empty); err == nil {
		t.Error("a package without certificates gave a bundle")
	}
}
