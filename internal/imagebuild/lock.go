package imagebuild

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// Package is one Debian package of the lock file (images/debian.lock,
// written by hack/debian-lock.sh): the exact file an image base is
// assembled from.
type Package struct {
	Name, Arch, Version string
	Size                int64
	// SHA256 is the .deb's hash, lower-case hex.
	SHA256 string
	URL    string
}

// Lock is the parsed lock file.
type Lock []Package

// ParseLock reads a lock file: one package a line, as
// "name arch version size sha256 url"; # starts a comment. Every bad line
// is reported.
func ParseLock(r io.Reader) (Lock, error) {
	var out Lock
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p, err := parseLockLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", n, err))
			continue
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func parseLockLine(line string) (Package, error) {
	f := strings.Fields(line)
	if len(f) != 6 {
		return Package{}, fmt.Errorf("%d fields, want 6 (name arch version size sha256 url)", len(f))
	}
	p := Package{Name: f[0], Arch: f[1], Version: f[2], SHA256: f[4], URL: f[5]}
	var err error
	if p.Size, err = strconv.ParseInt(f[3], 10, 64); err != nil || p.Size <= 0 {
		return p, fmt.Errorf("size %q: want a positive number", f[3])
	}
	if b, err := hex.DecodeString(p.SHA256); err != nil || len(b) != 32 || strings.ToLower(p.SHA256) != p.SHA256 {
		return p, fmt.Errorf("sha256 %q: want 64 lower-case hex digits", p.SHA256)
	}
	u, err := url.Parse(p.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return p, fmt.Errorf("url %q: want an http(s) URL", p.URL)
	}
	return p, nil
}

// Find returns the package name for a Debian architecture (amd64,
// arm64), or its architecture-independent ("all") build.
func (l Lock) Find(name, arch string) (Package, error) {
	for _, p := range l {
		if p.Name == name && (p.Arch == arch || p.Arch == "all") {
			return p, nil
		}
	}
	return Package{}, fmt.Errorf("%s for %s is not in the lock file: run make images-lock", name, arch)
}
