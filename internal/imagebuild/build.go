package imagebuild

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// readLock reads the lock file o names.
func (o Options) readLock() (Lock, error) {
	path := o.Lock
	if path == "" {
		path = filepath.Join(o.Root, "images", "debian.lock")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lock, err := ParseLock(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lock, nil
}

// Build builds every image of o and writes its layout and archive.
func Build(ctx context.Context, o Options, logger *slog.Logger) ([]Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	lock, err := o.readLock()
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, name := range o.Images {
		s, _ := specByName(name)
		start := time.Now()
		idx, plats, err := o.index(ctx, lock, s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		r := Result{Name: name, Ref: o.Registry + "/" + name + ":" + o.Tag, Platforms: plats, Index: idx,
			Layout: filepath.Join(o.Out, name), Archive: filepath.Join(o.Out, name+".tar")}
		if r.Digest, err = idx.Digest(); err != nil {
			return nil, err
		}
		if err := writeLayout(r.Layout, idx, r.Ref, o.Tag); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := tarDir(r.Layout, r.Archive, o.Created); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, p := range plats {
			logger.Info("image built", "image", r.Ref, "platform", p.Platform, "digest", p.Digest.String(),
				"size_bytes", p.Size, "compressed_bytes", p.Compressed)
		}
		logger.Info("index written", "image", r.Ref, "digest", r.Digest.String(), "archive", r.Archive, "took", time.Since(start).Round(time.Millisecond))
		out = append(out, r)
	}
	return out, nil
}

// writeLayout writes idx as the only entry of a fresh OCI layout, named
// by ref (containerd, Docker and Podman read the full name from
// io.containerd.image.name, skopeo the tag from ref.name).
func writeLayout(dir string, idx v1.ImageIndex, ref, tag string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": tag,
		"io.containerd.image.name":          ref,
	}))
}

// tarDir packs a layout folder into a tar the way every tool that takes an
// "OCI archive" reads it (the layout at the tar's root), with sorted
// entries, root-owned, stamped with mtime: the same layout gives the same
// bytes.
func tarDir(dir, dest string, mtime time.Time) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	tmp := dest + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	tw := tar.NewWriter(f)
	for _, p := range paths {
		if err := tarEntry(tw, dir, p, mtime); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dest)
}

func tarEntry(tw *tar.Writer, dir, p string, mtime time.Time) error {
	info, err := os.Lstat(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg, Size: info.Size()}
	switch {
	case info.IsDir():
		h.Name, h.Mode, h.Typeflag, h.Size = h.Name+"/", 0o755, tar.TypeDir, 0
	case !info.Mode().IsRegular():
		return fmt.Errorf("%s: not a file or folder", p)
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}

// Rootfs writes the two layers of each image of o, for its one platform,
// as folders <Out>/<image>/base and <Out>/<image>/app: what the
// Dockerfiles in images/ copy into an image from scratch, so that Docker
// and Buildah builds have exactly the files make images puts in.
func Rootfs(ctx context.Context, o Options, logger *slog.Logger) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if len(o.Platforms) != 1 {
		return fmt.Errorf("rootfs writes one platform, got %d", len(o.Platforms))
	}
	lock, err := o.readLock()
	if err != nil {
		return err
	}
	for _, name := range o.Images {
		s, _ := specByName(name)
		base, app, _, err := o.trees(ctx, lock, s, o.Platforms[0])
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		for layer, tr := range map[string]*Tree{"base": base, "app": app} {
			dir := filepath.Join(o.Out, name, layer)
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			if err := tr.WriteDir(dir); err != nil {
				return fmt.Errorf("%s %s: %w", name, layer, err)
			}
		}
		logger.Info("root file system written", "image", name, "platform", o.Platforms[0], "dir", filepath.Join(o.Out, name))
	}
	return nil
}
