//go:build cgo

package demo

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
)

// TestDemoComparesPolicies runs a compressed demo on a small pool and
// checks the live view and the summary: both policies served every
// request, the view showed the agents' readings and the pickers' reports.
func TestDemoComparesPolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system for about 10 s")
	}
	o := DefaultOptions()
	o.Nodes, o.Duration, o.Load, o.Refresh = "h100:2,a100:2", 3*time.Second, 0.5, 200*time.Millisecond
	var out bytes.Buffer
	if err := Run(context.Background(), o, &out, false, testutil.Logger()); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"policy round-robin (the gateway picks itself)", "policy headroom (the gateway asks 2 headroom-picker replicas over ext_proc)",
		"node-1 (a100;", "vllm-1-1", "picker-1 telemetry: node-0 #", "Summary: h100:2,a100:2"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Each policy's summary row: name, req/s, done, failed, ...
	row := regexp.MustCompile(`(?m)^(round-robin|headroom)\s+([0-9.]+)\s+(\d+)\s+(\d+)\s`)
	rows := row.FindAllStringSubmatch(text[strings.Index(text, "Summary:"):], -1)
	if len(rows) != 2 {
		t.Fatalf("summary has %d policy rows, want 2:\n%s", len(rows), text)
	}
	for _, r := range rows {
		done, _ := strconv.Atoi(r[3])
		if done == 0 || r[4] != "0" {
			t.Errorf("%s: %s done, %s failed; want some and none", r[1], r[3], r[4])
		}
	}
	if !regexp.MustCompile(`busy \(agent\)[\s\S]*SM +\d+%\s+\[#`).MatchString(text) {
		t.Error("the view never showed an agent's SM activity reading")
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, bad := range []func(*Options){
		func(o *Options) { o.Nodes = "h100" },
		func(o *Options) { o.Nodes = "v100:8" },
		func(o *Options) { o.Nodes = "h100:9" },
		func(o *Options) { o.Policies = "fastest" },
		func(o *Options) { o.Duration = 0 },
		func(o *Options) { o.Load = 3 },
		func(o *Options) { o.Pickers = 0 },
		func(o *Options) { o.Refresh = time.Millisecond },
	} {
		o := DefaultOptions()
		bad(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%+v validated", o)
		}
	}
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	o.Policies = "round-robin,epp"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "make bench-routing") {
		t.Errorf("the epp policy in the demo: %v, want it sent to make bench-routing", err)
	}
}
