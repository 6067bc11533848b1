// Package version says what a headroom binary was built from: the version
// (`git describe --tags --always --dirty`), the commit, the build date and
// the Go toolchain. The Makefile and hack/imagebuild set the first three at
// link time:
//
//	-ldflags "-X github.com/headroom-dev/headroom/internal/version.version=v0.1.0
//	          -X github.com/headroom-dev/headroom/internal/version.revision=<commit>
//	          -X github.com/headroom-dev/headroom/internal/version.buildDate=<RFC 3339>"
//
// The build date is the commit's date, not the clock's, so the same commit
// builds the same bytes. A plain `go build` in a git checkout still gets the
// commit and its date from the VCS stamp Go embeds; only the version stays
// "dev" there.
//
// The three link-time strings are the package's only variables: -X can set
// nothing else, and nothing writes them at run time.
package version

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
)

// Set by the linker (-X); never written at run time.
var (
	version   = "dev"
	revision  = ""
	buildDate = ""
)

// Info is what a binary was built from.
type Info struct {
	// Version is `git describe --tags --always --dirty` of the build, or
	// "dev".
	Version string
	// Revision is the full commit hash, with "-dirty" when the tree had
	// uncommitted changes and Go's VCS stamp is all there is to go on.
	Revision string
	// BuildDate is the commit's date, RFC 3339 in UTC.
	BuildDate string
	// GoVersion is the toolchain, e.g. go1.26.8; OS and Arch the target.
	GoVersion, OS, Arch string
}

// Get returns this binary's Info.
func Get() Info {
	return resolve(version, revision, buildDate, readBuildInfo())
}

func readBuildInfo() *debug.BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return bi
}

// resolve fills Info from the link-time strings, falling back to Go's VCS
// stamp for the commit and its date.
func resolve(ver, rev, date string, bi *debug.BuildInfo) Info {
	i := Info{Version: ver, Revision: rev, BuildDate: date, GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if i.Version == "" {
		i.Version = "dev"
	}
	if bi == nil {
		return i
	}
	var vcsRev, vcsTime string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			vcsRev = s.Value
		case "vcs.time":
			vcsTime = s.Value
		case "vcs.modified":
			modified, _ = strconv.ParseBool(s.Value)
		}
	}
	if i.Revision == "" && vcsRev != "" {
		i.Revision = vcsRev
		if modified {
			i.Revision += "-dirty"
		}
	}
	if i.BuildDate == "" {
		i.BuildDate = vcsTime
	}
	return i
}

// String is the one line --version prints after the program's name.
func (i Info) String() string {
	rev, date := i.Revision, i.BuildDate
	if rev == "" {
		rev = "unknown"
	}
	if date == "" {
		date = "unknown"
	}
	return fmt.Sprintf("%s (revision %s, built %s, %s %s/%s)", i.Version, rev, date, i.GoVersion, i.OS, i.Arch)
}

// LogAttrs are the key-value pairs a start-up log line carries.
func (i Info) LogAttrs() []any {
	return []any{"version", i.Version, "revision", i.Revision, "build_date", i.BuildDate, "go_version", i.GoVersion}
}

// Flag is --version: a boolean read from the command line only. It
// implements envflag's command-line-only marker, so no environment
// variable (HEADROOM_VERSION would be an easy one to set by accident) can
// turn a server into a program that prints a line and exits.
type Flag bool

// AddFlag registers --version on fs.
func AddFlag(fs *flag.FlagSet) *Flag {
	f := new(Flag)
	fs.Var(f, "version", "print the version, commit, build date and Go version, and exit")
	return f
}

// String implements flag.Value.
func (f *Flag) String() string {
	if f == nil {
		return "false"
	}
	return strconv.FormatBool(bool(*f))
}

// Set implements flag.Value.
func (f *Flag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("parse %q: %w", s, err)
	}
	*f = Flag(v)
	return nil
}

// IsBoolFlag lets --version stand without a value.
func (f *Flag) IsBoolFlag() bool { return true }

// CommandLineOnly tells envflag to leave this flag alone.
func (f *Flag) CommandLineOnly() bool { return true }

// LDFlags returns the -X flags that set the link-time strings: the
// Makefile's LDFLAGS say the same, and hack/imagebuild uses this.
func LDFlags(ver, rev, buildDate string) string {
	const pkg = "github.com/headroom-dev/headroom/internal/version"
	return fmt.Sprintf("-X %s.version=%s -X %s.revision=%s -X %s.buildDate=%s", pkg, ver, pkg, rev, pkg, buildDate)
}
