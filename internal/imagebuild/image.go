package imagebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Platform is one built platform image.
type Platform struct {
	Platform string
	Digest   v1.Hash
	// Size is the uncompressed size of its files; Compressed what a pull
	// downloads (layers, config and manifest).
	Size, Compressed int64
}

// Result is one built image.
type Result struct {
	Name string
	// Ref is registry/name:tag, what the chart's values point at.
	Ref       string
	Digest    v1.Hash
	Platforms []Platform
	// Layout is the OCI layout folder, Archive the tar of it.
	Layout, Archive string
	Index           v1.ImageIndex
}

// labels are the OCI annotations every image, manifest and index carries.
func (o Options) labels(s spec) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       s.name,
		"org.opencontainers.image.description": s.description,
		"org.opencontainers.image.source":      o.Source,
		"org.opencontainers.image.url":         o.Source,
		"org.opencontainers.image.revision":    o.Revision,
		"org.opencontainers.image.version":     o.Version,
		"org.opencontainers.image.licenses":    o.Licenses,
		"org.opencontainers.image.created":     o.Created.Format(time.RFC3339),
	}
}

// platformImage builds the image of s for one platform: a base layer and
// a layer holding the command and the licence.
func (o Options) platformImage(ctx context.Context, lock Lock, s spec, platform string) (v1.Image, int64, error) {
	base, app, pkgs, err := o.trees(ctx, lock, s, platform)
	if err != nil {
		return nil, 0, err
	}
	arch, _ := debianArch(platform)
	img, err := o.assemble(s, arch, base, app, pkgs)
	return img, base.Size() + app.Size(), err
}

// trees returns the two layers' file systems of s for one platform: the
// base (Debian packages, images/rootfs) and the command with the licence.
func (o Options) trees(ctx context.Context, lock Lock, s spec, platform string) (base, app *Tree, pkgs []Package, err error) {
	arch, err := debianArch(platform)
	if err != nil {
		return nil, nil, nil, err
	}
	if base, pkgs, err = o.baseTree(ctx, lock, arch, s.cgo); err != nil {
		return nil, nil, nil, err
	}
	bin, err := o.compile(ctx, s, platform, arch)
	if err != nil {
		return nil, nil, nil, err
	}
	license, err := os.ReadFile(filepath.Join(o.Root, "LICENSE"))
	if err != nil {
		return nil, nil, nil, err
	}
	app = NewTree()
	app.File(s.entrypoint(), 0o755, bin)
	app.File("/usr/share/doc/headroom/LICENSE", 0o644, license)
	return base, app, pkgs, nil
}

// assemble makes the OCI image of s from its two layers: its
// configuration (user, entrypoint, ports, labels), one history entry per
// layer, every time stamp the commit's.
func (o Options) assemble(s spec, arch string, base, app *Tree, pkgs []Package) (v1.Image, error) {
	var pkgDesc []string
	for _, p := range pkgs {
		pkgDesc = append(pkgDesc, p.Name+" "+p.Version)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	created := v1.Time{Time: o.Created}
	for _, l := range []struct {
		tree    *Tree
		comment string
	}{
		{base, "base: " + strings.Join(pkgDesc, ", ") + " (Debian, images/debian.lock), images/rootfs"},
		{app, s.name + " " + o.Version},
	} {
		layer, err := l.tree.Layer(o.Created)
		if err != nil {
			return nil, err
		}
		img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
			History: v1.History{Created: created, CreatedBy: "hack/imagebuild", Comment: l.comment}})
		if err != nil {
			return nil, err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created, cfg.OS, cfg.Architecture = created, "linux", arch
	cfg.Author = o.Source
	cfg.Config = v1.Config{
		User: fmt.Sprintf("%d:%d", nonroot, nonroot), Entrypoint: []string{s.entrypoint()}, WorkingDir: "/",
		Env: []string{"PATH=/usr/bin"}, ExposedPorts: s.exposedPorts(), Labels: o.labels(s),
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Annotations(img, o.labels(s)).(v1.Image), nil
}

// index builds every platform's image of s into one OCI image index.
func (o Options) index(ctx context.Context, lock Lock, s spec) (v1.ImageIndex, []Platform, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var plats []Platform
	for _, platform := range o.Platforms {
		img, size, err := o.platformImage(ctx, lock, s, platform)
		if err != nil {
			return nil, nil, err
		}
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			return nil, nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: p}})
		d, err := img.Digest()
		if err != nil {
			return nil, nil, err
		}
		plats = append(plats, Platform{Platform: platform, Digest: d, Size: size, Compressed: pulled(img)})
	}
	return mutate.Annotations(idx, o.labels(s)).(v1.ImageIndex), plats, nil
}

// pulled is what pulling img downloads: manifest, config and layers.
func pulled(img v1.Image) int64 {
	n, _ := img.Size()
	if c, err := img.RawConfigFile(); err == nil {
		n += int64(len(c))
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		if s, err := l.Size(); err == nil {
			n += s
		}
	}
	return n
}
