// Package imagebuild builds headroom's container images without a
// container daemon: it compiles each command per platform, assembles a
// minimal base from Debian packages pinned by version and SHA-256
// (images/debian.lock), and writes one multi-architecture OCI image index
// per image as an OCI layout folder and a tar of it, with
// go-containerregistry doing all the image formats. The same commit gives
// the same digests: every time stamp is the commit's, every tar is sorted.
//
// hack/imagebuild is its command line (make images, make push-images);
// test/image runs what it builds.
package imagebuild

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// Options configures a build.
type Options struct {
	// Root is the repository root: go build runs there, images/ is read
	// from there.
	Root string
	// Out receives <name>/ (an OCI layout) and <name>.tar per image.
	Out string
	// Cache holds the downloaded .debs, named by their hash.
	Cache string
	// Lock is the Debian lock file (default <Root>/images/debian.lock).
	Lock string
	// Images are the names to build (headroom-agent, headroom-picker).
	Images []string
	// Platforms are os/arch pairs (linux/amd64, linux/arm64).
	Platforms []string
	// Registry is the images' repository prefix; Tag their tag.
	Registry, Tag string
	// Version and Revision are what the binaries report and the labels
	// say; Created is the commit's time (SOURCE_DATE_EPOCH).
	Version, Revision string
	Created           time.Time
	// Source and Licenses fill the OCI labels of the same names.
	Source, Licenses string
	// Go is the go command; CC the C compiler per platform for cgo
	// (default: gcc for the host's architecture, <triple>-gcc for the
	// other).
	Go string
	CC map[string]string
}

// DefaultOptions returns the defaults: both images, both platforms,
// ghcr.io/headroom-dev, SOURCE_DATE_EPOCH from the environment.
func DefaultOptions() Options {
	o := Options{
		Root: ".", Out: "bin/images", Cache: ".cache/debs",
		Images:    []string{"headroom-agent", "headroom-picker"},
		Platforms: []string{"linux/amd64", "linux/arm64"},
		Registry:  "ghcr.io/headroom-dev", Version: "dev",
		Source: "https://github.com/headroom-dev/headroom", Licenses: "Apache-2.0",
		Go: "go", CC: map[string]string{},
	}
	if s, err := epochFromEnv(); err == nil {
		o.Created = s
	}
	return o
}

func epochFromEnv() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, errors.New("SOURCE_DATE_EPOCH is not set")
	}
	var sec int64
	if _, err := fmt.Sscan(v, &sec); err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", v)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// AddFlags registers the flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Root, "root", o.Root, "repository root")
	fs.StringVar(&o.Out, "out", o.Out, "output folder: <image>/ (OCI layout) and <image>.tar")
	fs.StringVar(&o.Cache, "cache", o.Cache, "folder of the downloaded Debian packages")
	fs.StringVar(&o.Lock, "lock", o.Lock, "Debian lock file (default <root>/images/debian.lock)")
	fs.Func("images", "comma-separated images to build (default "+strings.Join(o.Images, ",")+")", func(s string) error {
		o.Images = splitList(s)
		return nil
	})
	fs.Func("platforms", "comma-separated os/arch (default "+strings.Join(o.Platforms, ",")+")", func(s string) error {
		o.Platforms = splitList(s)
		return nil
	})
	fs.StringVar(&o.Registry, "registry", o.Registry, "repository prefix of the image names")
	fs.StringVar(&o.Tag, "tag", o.Tag, "image tag (the chart's appVersion)")
	fs.StringVar(&o.Version, "version", o.Version, "version the binaries report (git describe)")
	fs.StringVar(&o.Revision, "revision", o.Revision, "commit the images are built from")
	fs.Func("source-date-epoch", "commit time in seconds, for every time stamp (default $SOURCE_DATE_EPOCH)", func(s string) error {
		var sec int64
		if _, err := fmt.Sscan(s, &sec); err != nil || sec < 0 {
			return fmt.Errorf("want seconds since 1970, got %q", s)
		}
		o.Created = time.Unix(sec, 0).UTC()
		return nil
	})
	fs.StringVar(&o.Go, "go", o.Go, "go command")
	fs.Func("cc", "C compiler for a platform, as os/arch=compiler (repeatable)", func(s string) error {
		plat, cc, ok := strings.Cut(s, "=")
		if !ok || plat == "" || cc == "" {
			return fmt.Errorf("want os/arch=compiler, got %q", s)
		}
		o.CC[plat] = cc
		return nil
	})
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Validate checks the options and lists every problem.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Images) == 0 {
		errs = append(errs, errors.New("no image to build"))
	}
	for _, n := range o.Images {
		if _, ok := specByName(n); !ok {
			errs = append(errs, fmt.Errorf("unknown image %q: want headroom-agent or headroom-picker", n))
		}
	}
	if len(o.Platforms) == 0 {
		errs = append(errs, errors.New("no platform"))
	}
	for _, p := range o.Platforms {
		if _, err := debianArch(p); err != nil {
			errs = append(errs, err)
		}
	}
	if o.Tag == "" || strings.ContainsAny(o.Tag, " /:@") {
		errs = append(errs, fmt.Errorf("--tag %q: want a tag such as 0.1.0", o.Tag))
	}
	if o.Registry == "" {
		errs = append(errs, errors.New("--registry is empty"))
	}
	for _, v := range []struct{ name, val string }{{"--version", o.Version}, {"--revision", o.Revision}} {
		if strings.ContainsAny(v.val, " \t\n'\"") {
			errs = append(errs, fmt.Errorf("%s %q: no spaces or quotes", v.name, v.val))
		}
	}
	if o.Created.IsZero() {
		errs = append(errs, errors.New("no build time: set SOURCE_DATE_EPOCH or --source-date-epoch to the commit's time (git log -1 --format=%ct)"))
	}
	if o.Out == "" || o.Cache == "" {
		errs = append(errs, errors.New("--out and --cache must be set"))
	}
	return errors.Join(errs...)
}

// debianArch maps linux/amd64 and linux/arm64 to Debian's names.
func debianArch(platform string) (string, error) {
	switch platform {
	case "linux/amd64":
		return "amd64", nil
	case "linux/arm64":
		return "arm64", nil
	}
	return "", fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", platform)
}

// HostPlatform is the platform this process runs on.
func HostPlatform() string { return runtime.GOOS + "/" + runtime.GOARCH }

// cc returns the C compiler for a platform.
func (o Options) cc(platform string) string {
	if cc := o.CC[platform]; cc != "" {
		return cc
	}
	if platform == HostPlatform() {
		if cc := os.Getenv("CC"); cc != "" {
			return cc
		}
		return "gcc"
	}
	triple := map[string]string{"linux/amd64": "x86_64-linux-gnu", "linux/arm64": "aarch64-linux-gnu"}[platform]
	return triple + "-gcc"
}
