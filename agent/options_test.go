package agent

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"unknown backend", func(o *Options) { o.GPUBackend = "rocm" }, `--gpu-backend "rocm"`},
		{"interval below minimum", func(o *Options) { o.Interval = 50 * time.Millisecond }, "below the minimum 100ms"},
		{"interval at minimum", func(o *Options) { o.Interval = MinInterval }, ""},
		{"deadline above interval", func(o *Options) { o.Deadline = 2 * time.Second }, "--collector.deadline"},
		{"address without port", func(o *Options) { o.ListenAddress = "localhost" }, "--listen-address"},
		{"address with bad port", func(o *Options) { o.ListenAddress = ":http-alt" }, "not a number"},
		{"address with host name", func(o *Options) { o.ListenAddress = "example.org:9400" }, "host must be"},
		{"ipv6 address", func(o *Options) { o.ListenAddress = "[::1]:9400" }, ""},
		{"unknown sim profile", func(o *Options) { o.GPUBackend, o.SimProfile = BackendSim, "dgx1" }, "--sim-profile"},
		{"negative processes", func(o *Options) { o.SimProcesses = -1 }, "--sim-processes"},
		{"bad log level", func(o *Options) { o.LogLevel = "loud" }, "--log-level"},
		{"bad log format", func(o *Options) { o.LogFormat = "xml" }, "--log-format"},
		{"empty node", func(o *Options) { o.NodeName = "" }, "--node-name"},
		{"pods refresh too fast", func(o *Options) { o.Pods.Refresh = 100 * time.Millisecond }, "--pods.refresh-interval"},
		{"pods refresh ignored with pods off", func(o *Options) { o.Pods.Refresh, o.Collectors = 0, []string{"nvml"} }, ""},
		{"empty kubelet socket", func(o *Options) { o.Pods.KubeletSocket = "" }, "--pods.kubelet-socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			o.NodeName = "n"
			tt.mutate(&o)
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
	o.GPUBackend, o.Interval, o.LogFormat = "x", time.Millisecond, "y"
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
