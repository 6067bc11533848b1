// Command pollstream compares two ways of keeping the picker's view of
// many model servers fresh, in one run on one machine:
//
//   - poll: one process (the picker) scrapes every pod's /metrics on a
//     fixed period, as the GIE endpoint picker does; once parsing the
//     whole body with expfmt (what the EPP does) and once with headroom's
//     own filtered parser (the fairest baseline);
//   - stream: node agents scrape their own pods on the same period and
//     stream one report per node to the picker's ingest.
//
// The model servers run in a third process serving a captured vLLM
// exposition (-body; 86 KB of real vLLM by default, histograms included),
// so their cost is counted in neither. With -epp the real GIE endpoint
// picker polls the same servers too (each on its own loopback IP, one
// port, as an InferencePool's pods; envtest holds the pool). It prints
// each side's CPU, in cores, and the ratios.
//
//	go run ./test/load/pollstream -pods 100 -period 50ms
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

const roleEnv = "HEADROOM_POLLSTREAM_ROLE"

type options struct {
	pods, podsPerNode int
	period            time.Duration
	duration, warmup  time.Duration
	body              string
	bodySize          int
	// epp, when set, is the GIE endpoint picker binary, run against the
	// same servers on an envtest control plane (assets) and measured too.
	epp, assets string
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		if err := child(role, os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "pollstream %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	var o options
	fs := flag.NewFlagSet("pollstream", flag.ExitOnError)
	fs.IntVar(&o.pods, "pods", 100, "model-server pods")
	fs.IntVar(&o.podsPerNode, "pods-per-node", 8, "pods per node agent (one per GPU)")
	fs.DurationVar(&o.period, "period", 50*time.Millisecond, "freshness target: every pod is read this often")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured phase of each mode")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured phase before each")
	fs.StringVar(&o.body, "body", "collector/modelserver/testdata/vllm.prom", "exposition the model servers serve")
	fs.StringVar(&o.epp, "epp", "", "also run the real GIE endpoint picker (make reference-tools: .cache/reference/epp) against the same servers and measure its CPU")
	fs.StringVar(&o.assets, "envtest-assets", ".cache/envtest", "kube-apiserver and etcd for the EPP's control plane (make envtest-assets)")
	_ = fs.Parse(os.Args[1:])
	if st, err := os.Stat(o.body); err == nil {
		o.bodySize = int(st.Size())
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "pollstream:", err)
		os.Exit(1)
	}
}
