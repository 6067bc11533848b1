package envflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     string
		wantOn   bool
		wantIval time.Duration
		wantErr  string
	}{
		{name: "defaults", want: ":9400", wantOn: true, wantIval: time.Second},
		{name: "env fills", env: map[string]string{"HEADROOM_LISTEN_ADDRESS": ":1", "HEADROOM_COLLECTOR_NVML": "false", "HEADROOM_SAMPLE_INTERVAL": "2s"}, want: ":1", wantOn: false, wantIval: 2 * time.Second},
		{name: "flag wins over env", args: []string{"--listen-address=:2"}, env: map[string]string{"HEADROOM_LISTEN_ADDRESS": ":1"}, want: ":2", wantOn: true, wantIval: time.Second},
		{name: "bad env value", env: map[string]string{"HEADROOM_SAMPLE_INTERVAL": "soon"}, wantErr: "HEADROOM_SAMPLE_INTERVAL"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			addr := fs.String("listen-address", ":9400", "")
			on := fs.Bool("collector.nvml", true, "")
			ival := fs.Duration("sample-interval", time.Second, "")
			err := Parse(fs, "HEADROOM_", tt.args, func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *addr != tt.want || *on != tt.wantOn || *ival != tt.wantIval {
				t.Errorf("got %q %v %s, want %q %v %s", *addr, *on, *ival, tt.want, tt.wantOn, tt.wantIval)
			}
		})
	}
}

func TestUsageNamesVariable(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("collector.deadline", "", "limit")
	Usage(fs, "HEADROOM_")
	if u := fs.Lookup("collector.deadline").Usage; u != "limit [$HEADROOM_COLLECTOR_DEADLINE]" {
		t.Errorf("usage = %q", u)
	}
}

// cliOnly is a boolean flag that envflag must leave to the command line.
type cliOnly bool

func (c *cliOnly) String() string        { return "false" }
func (c *cliOnly) Set(string) error      { *c = true; return nil }
func (c *cliOnly) IsBoolFlag() bool      { return true }
func (c *cliOnly) CommandLineOnly() bool { return true }

func TestCommandLineOnly(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		want bool
	}{
		{"environment ignored", nil, false},
		{"command line read", []string{"--version"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var v cliOnly
			fs.Var(&v, "version", "print the version")
			Usage(fs, "HEADROOM_")
			if u := fs.Lookup("version").Usage; u != "print the version" {
				t.Errorf("usage = %q, want no environment variable named", u)
			}
			env := func(k string) (string, bool) { return "true", k == "HEADROOM_VERSION" }
			if err := Parse(fs, "HEADROOM_", tt.args, env); err != nil {
				t.Fatal(err)
			}
			if bool(v) != tt.want {
				t.Errorf("--version = %v, want %v", v, tt.want)
			}
		})
	}
}
