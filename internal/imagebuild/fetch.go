package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
)

// ErrHashMismatch is returned for a download whose SHA-256 is not the
// lock file's.
var ErrHashMismatch = errors.New("sha256 differs from the lock file")

// Fetcher downloads locked packages into a cache folder, each file named
// by its hash, and verifies every byte against the lock before use.
type Fetcher struct {
	Dir    string
	Client *http.Client
}

// Fetch returns the path of p's .deb, downloading it when the cache lacks
// it. A cached file is hashed again on every call.
func (f Fetcher) Fetch(ctx context.Context, p Package) (string, error) {
	path := filepath.Join(f.Dir, p.SHA256+".deb")
	if err := verify(path, p); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	if err != nil {
		return "", err
	}
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("download %s %s: %w", p.Name, p.Version, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("download %s %s: %s from %s (a superseded version leaves the mirror: run make images-lock)", p.Name, p.Version, resp.Status, p.URL)
	}
	tmp, err := os.CreateTemp(f.Dir, ".download-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, io.LimitReader(resp.Body, p.Size+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("download %s %s: %w", p.Name, p.Version, err)
	}
	if err := verify(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("download %s %s from %s: %w", p.Name, p.Version, p.URL, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// verify checks a file's size and SHA-256 against p.
func verify(path string, p Package) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return err
	}
	if n != p.Size {
		return fmt.Errorf("%d bytes, the lock file says %d: %w", n, p.Size, ErrHashMismatch)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != p.SHA256 {
		return fmt.Errorf("%s: %w (%s)", got, ErrHashMismatch, p.SHA256)
	}
	return nil
}
