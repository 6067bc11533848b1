package collector

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/headroom-dev/headroom/internal/envflag"
)

// TestHostFlags covers the shared host paths and their deprecated aliases,
// from the command line and from the environment.
func TestHostFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		args           []string
		env            map[string]string
		proc, cgroup   string
		deprecated     int
		wantErr        string
		wantErrMention string
	}{
		{"defaults", nil, nil, "/proc", "", 0, "", ""},
		{"new flags", []string{"--host.proc-root=/host/proc", "--host.cgroup-root=/host/cg"}, nil, "/host/proc", "/host/cg", 0, "", ""},
		{"old pods flag", []string{"--pods.proc-root=/host/proc"}, nil, "/host/proc", "", 1, "", ""},
		{"old ztunnel flag", []string{"--ztunnel.cgroup-root=/host/cg"}, nil, "/proc", "/host/cg", 1, "", ""},
		{"old flags agree (the chart's)", []string{"--pods.cgroup-root=/c", "--ztunnel.cgroup-root=/c"}, nil, "/proc", "/c", 2, "", ""},
		{"old flags disagree", []string{"--pods.proc-root=/a", "--ztunnel.proc-root=/b"}, nil, "", "", 2, "disagree", "--ztunnel.proc-root"},
		{"old and new disagree", []string{"--host.cgroup-root=/a", "--pods.cgroup-root=/b"}, nil, "", "", 1, "disagree", "--host.cgroup-root"},
		{"old variable", nil, map[string]string{"HEADROOM_PODS_PROC_ROOT": "/host/proc"}, "/host/proc", "", 1, "", ""},
		{"new variable", nil, map[string]string{"HEADROOM_HOST_PROC_ROOT": "/host/proc"}, "/host/proc", "", 0, "", ""},
		{"empty proc", []string{"--host.proc-root="}, nil, "", "", 0, "--host.proc-root must not be empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := DefaultHost()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			h.AddFlags(fs)
			getenv := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			if err := envflag.Parse(fs, "HEADROOM_", tc.args, getenv); err != nil {
				t.Fatal(err)
			}
			err := h.Validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.wantErrMention) {
					t.Fatalf("Validate = %v, want %q naming %q", err, tc.wantErr, tc.wantErrMention)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.ProcRoot != tc.proc || h.CgroupRoot != tc.cgroup {
				t.Errorf("host %+v, want proc %q cgroup %q", h, tc.proc, tc.cgroup)
			}
			if d := h.Deprecated(); len(d) != tc.deprecated {
				t.Errorf("deprecated flags given: %v, want %d", d, tc.deprecated)
			}
		})
	}
}

// TestHostFlagsDefaultsPrint: -help shows each flag's default.
func TestHostFlagsDefaultsPrint(t *testing.T) {
	t.Parallel()
	h := DefaultHost()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	h.AddFlags(fs)
	fs.PrintDefaults()
	if !strings.Contains(out.String(), "(default /proc)") || !strings.Contains(out.String(), "deprecated: use --host.proc-root") {
		t.Errorf("help:\n%s", out.String())
	}
}
