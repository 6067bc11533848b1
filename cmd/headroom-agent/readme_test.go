package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/internal/envflag"
)

// TestREADMEListsEveryFlag keeps the README's configuration table in step
// with the agent's flags and their environment variables.
func TestREADMEListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("headroom-agent", flag.ContinueOnError)
	opts, gpu := agent.DefaultOptions(), defaultGPUBackend()
	opts.AddFlags(fs)
	gpu.AddFlags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` | `" + envflag.Name("HEADROOM_", f.Name) + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README's configuration table lacks the row for --%s (%q)", f.Name, row)
		}
	})
}
