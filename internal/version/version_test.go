package version

import (
	"flag"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	stamp := &debug.BuildInfo{Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	clean := &debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}}
	for _, tt := range []struct {
		name             string
		ver, rev, date   string
		bi               *debug.BuildInfo
		wantVer, wantRev string
		wantDate         string
	}{
		{"link-time values win", "v0.1.0", "fff", "2025-01-01T00:00:00Z", stamp, "v0.1.0", "fff", "2025-01-01T00:00:00Z"},
		{"VCS stamp fills the gaps", "dev", "", "", stamp, "dev", "abc123-dirty", "2026-01-02T03:04:05Z"},
		{"clean tree", "dev", "", "", clean, "dev", "abc123", ""},
		{"no build info (tests)", "", "", "", nil, "dev", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			i := resolve(tt.ver, tt.rev, tt.date, tt.bi)
			if i.Version != tt.wantVer || i.Revision != tt.wantRev || i.BuildDate != tt.wantDate {
				t.Errorf("got %q %q %q, want %q %q %q", i.Version, i.Revision, i.BuildDate, tt.wantVer, tt.wantRev, tt.wantDate)
			}
			if i.GoVersion != runtime.Version() || i.OS != runtime.GOOS || i.Arch != runtime.GOARCH {
				t.Errorf("toolchain/platform = %s %s/%s", i.GoVersion, i.OS, i.Arch)
			}
		})
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	i := Info{Version: "v0.1.0", Revision: "abc", BuildDate: "2026-01-02T03:04:05Z", GoVersion: "go1.26.8", OS: "linux", Arch: "arm64"}
	if got, want := i.String(), "v0.1.0 (revision abc, built 2026-01-02T03:04:05Z, go1.26.8 linux/arm64)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Info{Version: "dev", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"}).String(); !strings.Contains(got, "revision unknown, built unknown") {
		t.Errorf("String() without a commit = %q", got)
	}
}

func TestFlag(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args    []string
		want    bool
		wantErr bool
	}{
		{nil, false, false},
		{[]string{"--version"}, true, false},
		{[]string{"-version=false"}, false, false},
		{[]string{"--version=maybe"}, false, true},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f := AddFlag(fs)
			err := fs.Parse(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if !tt.wantErr && bool(*f) != tt.want {
				t.Errorf("--version = %v, want %v", *f, tt.want)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	i := Info{Version: "v0.1.0", Revision: "abc", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"}
	want := `# HELP headroom_build_info Always 1; the labels say what the process was built from.
# TYPE headroom_build_info gauge
headroom_build_info{goarch="amd64",goos="linux",goversion="go1.26.8",revision="abc",version="v0.1.0"} 1
`
	if err := testutil.CollectAndCompare(i.Collector(), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
