package builtin

import (
	"flag"
	"io"
	"slices"
	"testing"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/pods"
)

// TestTableDeclarationsHold checks the built-in table against its own
// declarations: one owner per section, every Uses earlier, and no enrich
// step reading what a later one writes.
func TestTableDeclarationsHold(t *testing.T) {
	t.Parallel()
	tb := Table()
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range tb {
		names = append(names, e.Name)
	}
	want := []string{"nvml", "dcgm", "pods", "modelserver", "energy", "ztunnel", "ztunnel_ebpf"}
	if !slices.Equal(names, want) {
		t.Errorf("table order %v, want %v (the order of snapshots and metrics)", names, want)
	}
	if got := tb.DefaultEnabled(); !slices.Equal(got, want) {
		t.Errorf("on by default: %v, want all of %v", got, want)
	}
}

// TestEachCallHasItsOwnOptions: two agents in one process (the demo) must
// not share option values.
func TestEachCallHasItsOwnOptions(t *testing.T) {
	t.Parallel()
	a, b := Table(), Table()
	fs := flag.NewFlagSet("a", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.AddFlags(fs)
	if err := fs.Parse([]string{"--pods.refresh-interval=1m"}); err != nil {
		t.Fatal(err)
	}
	pa, _ := collector.OptionsOf[*pods.Options](a, pods.Name)
	pb, _ := collector.OptionsOf[*pods.Options](b, pods.Name)
	if pa.Refresh.String() != "1m0s" || pb.Refresh == pa.Refresh {
		t.Errorf("refresh: parsed table %s, other table %s", pa.Refresh, pb.Refresh)
	}
}
