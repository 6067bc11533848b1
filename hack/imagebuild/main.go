// Command imagebuild builds and pushes headroom's container images with
// internal/imagebuild: no container daemon, Debian bases pinned in
// images/debian.lock, one multi-architecture OCI index per image.
//
//	imagebuild build  [flags]   compile, assemble, write <out>/<image>/ and <out>/<image>.tar
//	imagebuild push   [flags]   push <out>/<image>/ to <registry>/<image>:<tag>; write <out>/<image>.ref
//	                            and <out>/<image>.<os>-<arch>.ref (repository@digest)
//	imagebuild rootfs [flags]   write the layers of one platform as <out>/<image>/{base,app}/
//	                            (the Dockerfiles in images/ copy them into an image from scratch)
//	imagebuild digest [flags]   print the index digest of each <out>/<image>/
//	imagebuild login  [flags]   store $REGISTRY_USERNAME/$REGISTRY_PASSWORD for the registry's host
//	                            in the Docker configuration (read by push, helm, syft and cosign)
//
// Every flag can be set as HEADROOM_IMAGEBUILD_<FLAG>. make images and
// make push-images drive it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/headroom-dev/headroom/internal/envflag"
	"github.com/headroom-dev/headroom/internal/imagebuild"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 || !slices.Contains([]string{"build", "rootfs", "push", "digest", "login"}, args[0]) {
		fmt.Fprintln(os.Stderr, "usage: imagebuild build|rootfs|push|digest|login [flags] (-help for the flags)")
		return 2
	}
	fs := flag.NewFlagSet("imagebuild "+args[0], flag.ContinueOnError)
	opts := imagebuild.DefaultOptions()
	opts.AddFlags(fs)
	insecure := fs.Bool("insecure-registry", false, "push: plain HTTP (a registry on loopback)")
	envflag.Usage(fs, "HEADROOM_IMAGEBUILD_")
	if err := envflag.Parse(fs, "HEADROOM_IMAGEBUILD_", args[1:], nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	switch args[0] {
	case "build":
		_, err = imagebuild.Build(ctx, opts, logger)
	case "rootfs":
		err = imagebuild.Rootfs(ctx, opts, logger)
	case "push":
		err = push(ctx, opts, *insecure, logger)
	case "digest":
		err = digests(opts)
	case "login":
		var file string
		host, _, _ := strings.Cut(opts.Registry, "/")
		if file, err = imagebuild.Login(host); err == nil {
			logger.Info("credentials stored", "registry", host, "config", file)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		return 1
	}
	return 0
}

// push pushes each image and records name@digest in <out>/<image>.ref
// for the signing and SBOM steps.
func push(ctx context.Context, o imagebuild.Options, insecure bool, logger *slog.Logger) error {
	if o.Tag == "" {
		return errors.New("--tag is empty")
	}
	for _, name := range o.Images {
		ref := o.Registry + "/" + name + ":" + o.Tag
		d, err := imagebuild.Push(ctx, filepath.Join(o.Out, name), ref, insecure)
		if err != nil {
			return err
		}
		repo := o.Registry + "/" + name
		if err := writeRef(filepath.Join(o.Out, name+".ref"), repo, d.String()); err != nil {
			return err
		}
		idx, err := imagebuild.LayoutIndex(filepath.Join(o.Out, name))
		if err != nil {
			return err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, desc := range m.Manifests {
			if desc.Platform == nil {
				continue
			}
			file := fmt.Sprintf("%s.%s-%s.ref", name, desc.Platform.OS, desc.Platform.Architecture)
			if err := writeRef(filepath.Join(o.Out, file), repo, desc.Digest.String()); err != nil {
				return err
			}
		}
		logger.Info("pushed", "image", ref, "digest", d.String())
	}
	return nil
}

// writeRef records repo@digest for the SBOM and signing steps.
func writeRef(path, repo, digest string) error {
	return os.WriteFile(path, []byte(repo+"@"+digest+"\n"), 0o644)
}

func digests(o imagebuild.Options) error {
	for _, name := range o.Images {
		idx, err := imagebuild.LayoutIndex(filepath.Join(o.Out, name))
		if err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Printf("%s %s\n", name, d)
	}
	return nil
}
