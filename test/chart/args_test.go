package chart

import (
	"flag"
	"io"
	"path/filepath"
	"testing"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/picker/app"
)

// containerArgs returns the args of the first container of each object of
// kind.
func containerArgs(t *testing.T, objs []map[string]any, kind string) [][]string {
	t.Helper()
	var all [][]string
	for _, o := range ofKind(objs, kind) {
		spec := o["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
		c := spec["containers"].([]any)[0].(map[string]any)
		var args []string
		for _, a := range c["args"].([]any) {
			args = append(args, a.(string))
		}
		all = append(all, args)
	}
	if len(all) == 0 {
		t.Fatalf("no %s rendered", kind)
	}
	return all
}

// TestArgsAccepted parses the flags the chart gives each container with
// the commands' own flag sets and validation, so a renamed or mistyped
// flag fails here rather than in a crash-looping pod, and a deprecated
// alias fails here rather than in a warning at every start.
func TestArgsAccepted(t *testing.T) {
	tl := tools(t)
	for _, set := range valueSets(t, tl) {
		t.Run(filepath.Base(set), func(t *testing.T) {
			objs := render(t, tl, "-f", set)
			for _, args := range containerArgs(t, objs, "DaemonSet") {
				fs := flag.NewFlagSet("headroom-agent", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				opts := agent.DefaultOptions()
				opts.AddFlags(fs)
				if err := fs.Parse(args); err != nil {
					t.Errorf("headroom-agent refuses the chart's flags %q: %v", args, err)
				} else if err := opts.Validate(); err != nil {
					t.Errorf("headroom-agent: %v", err)
				}
				for _, d := range opts.Host.Deprecated() {
					t.Errorf("the chart gives the agent the deprecated --%s: use --%s", d[0], d[1])
				}
			}
			for _, args := range containerArgs(t, objs, "Deployment") {
				fs := flag.NewFlagSet("headroom-picker", flag.ContinueOnError)
				fs.SetOutput(io.Discard)
				opts := app.DefaultOptions()
				opts.AddFlags(fs)
				if err := fs.Parse(args); err != nil {
					t.Errorf("headroom-picker refuses the chart's flags %q: %v", args, err)
				} else if err := opts.Validate(); err != nil {
					t.Errorf("headroom-picker: %v", err)
				}
			}
		})
	}
}
