package agent

import (
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/pods"
)

// podsOptions returns the options of o's pods collector.
func podsOptions(t *testing.T, o *Options) *pods.Options {
	t.Helper()
	po, ok := collector.OptionsOf[*pods.Options](o.Collectors, pods.Name)
	if !ok {
		t.Fatal("no pods collector in the table")
	}
	return po
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*testing.T, *Options)
		wantErr string
	}{
		{"defaults", func(*testing.T, *Options) {}, ""},
		{"interval below minimum", func(_ *testing.T, o *Options) { o.Interval = 50 * time.Millisecond }, "below the minimum 100ms"},
		{"interval at minimum", func(_ *testing.T, o *Options) { o.Interval = MinInterval }, ""},
		{"deadline above interval", func(_ *testing.T, o *Options) { o.Deadline = 2 * time.Second }, "--collector.deadline"},
		{"address without port", func(_ *testing.T, o *Options) { o.ListenAddress = "localhost" }, "--listen-address"},
		{"address with bad port", func(_ *testing.T, o *Options) { o.ListenAddress = ":http-alt" }, "not a number"},
		{"address with host name", func(_ *testing.T, o *Options) { o.ListenAddress = "example.org:9400" }, "host must be"},
		{"ipv6 address", func(_ *testing.T, o *Options) { o.ListenAddress = "[::1]:9400" }, ""},
		{"bad log level", func(_ *testing.T, o *Options) { o.LogLevel = "loud" }, "--log-level"},
		{"bad log format", func(_ *testing.T, o *Options) { o.LogFormat = "xml" }, "--log-format"},
		{"empty node", func(_ *testing.T, o *Options) { o.NodeName = "" }, "--node-name"},
		{"empty proc root", func(_ *testing.T, o *Options) { o.Host.ProcRoot = "" }, "--host.proc-root"},
		{"pods refresh too fast", func(t *testing.T, o *Options) { podsOptions(t, o).Refresh = 100 * time.Millisecond }, "--pods.refresh-interval"},
		{"pods refresh ignored with pods off", func(t *testing.T, o *Options) {
			podsOptions(t, o).Refresh = 0
			o.Collectors = collector.Table{nvml.Entry(nil)}
		}, ""},
		{"empty kubelet socket", func(t *testing.T, o *Options) { podsOptions(t, o).KubeletSocket = "" }, "--pods.kubelet-socket"},
		{"table out of order", func(_ *testing.T, o *Options) {
			o.Collectors = slices.Concat(o.Collectors[3:4], o.Collectors[:3], o.Collectors[4:]) // modelserver first
		}, "move \"pods\" before it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			o.NodeName = "n"
			tt.mutate(t, &o)
			err := o.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestValidateReportsAllErrors(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.ListenAddress, o.Interval, o.LogFormat = "x", time.Millisecond, "y"
	err := o.Validate()
	if err == nil || strings.Count(err.Error(), "\n") < 2 {
		t.Fatalf("want three errors at once, got %v", err)
	}
}

func TestCollectorDeadlineDefault(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Interval = time.Second
	if got := o.CollectorDeadline(); got != 800*time.Millisecond {
		t.Errorf("default deadline = %s, want 80%% of the interval", got)
	}
	o.Deadline = 300 * time.Millisecond
	if got := o.CollectorDeadline(); got != o.Deadline {
		t.Errorf("deadline = %s, want the configured %s", got, o.Deadline)
	}
}

// TestFlagsReachTheCollectors parses a command line: each collector's own
// flags land in its options, the switches in Enabled, and the host paths
// (and their deprecated aliases) in Host.
func TestFlagsReachTheCollectors(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.AddFlags(fs)
	err := fs.Parse([]string{"--pods.refresh-interval=30s", "--collector.dcgm=false", "--pods.proc-root=/host/proc", "--host.cgroup-root=/host/sys/fs/cgroup"})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if r := podsOptions(t, &o).Refresh; r != 30*time.Second {
		t.Errorf("pods refresh %s, want 30s", r)
	}
	if slices.Contains(o.Enabled(), "dcgm") || !slices.Contains(o.Enabled(), "pods") {
		t.Errorf("enabled %v, want every collector but dcgm", o.Enabled())
	}
	if o.Host.ProcRoot != "/host/proc" || o.Host.CgroupRoot != "/host/sys/fs/cgroup" {
		t.Errorf("host %+v", o.Host)
	}
	if d := o.Host.Deprecated(); len(d) != 1 || d[0] != [2]string{"pods.proc-root", "host.proc-root"} {
		t.Errorf("deprecated flags given: %v", d)
	}
}
