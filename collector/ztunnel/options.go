// Package ztunnel measures Istio's node proxy (ztunnel, ambient mode) on a
// GPU node. Two sources share one finder: "ztunnel" finds it (pod label
// app=ztunnel through the runtime, process name through /proc) and reads
// its container cgroup's memory and CPU; "ztunnel_ebpf" loads the bpf/
// programs and reads their per-CPU counters: bytes and connections by pod
// and leg, CPU per thread, and the programs' own cost. No ztunnel on the
// node (sidecar mode, no mesh) is a normal state, not an error; without
// CAP_BPF and CAP_PERFMON the eBPF source reports itself failed and the
// rest of the agent runs.
package ztunnel

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Names in the collector table.
const (
	Name     = "ztunnel"
	EBPFName = "ztunnel_ebpf"
)

// Options configures both sources. The host's /proc and cgroup mount are
// the agent's (collector.Host).
type Options struct {
	// Refresh is how often ztunnel is looked for again, and how often
	// unknown network namespaces may trigger a /proc scan.
	Refresh time.Duration
	// ProcessName and PodLabel (the pod's app label) identify ztunnel.
	ProcessName, PodLabel string
	// BPFStats turns on the kernel's BPF run-time statistics.
	BPFStats bool
}

// DefaultOptions returns the defaults for an Istio ambient node.
func DefaultOptions() Options {
	return Options{Refresh: 10 * time.Second, ProcessName: "ztunnel", PodLabel: "ztunnel", BPFStats: true}
}

// AddFlags registers the sources' flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Refresh, "ztunnel.refresh-interval", o.Refresh, "how often to look for ztunnel and map network namespaces to pods")
	fs.StringVar(&o.ProcessName, "ztunnel.process-name", o.ProcessName, "ztunnel's process name (comm)")
	fs.StringVar(&o.PodLabel, "ztunnel.pod-label", o.PodLabel, "value of ztunnel's pod label app")
	fs.BoolVar(&o.BPFStats, "ztunnel.bpf-stats", o.BPFStats, "turn on kernel BPF run-time statistics (kernel.bpf_stats_enabled) to publish the programs' own cost")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Refresh < time.Second {
		errs = append(errs, fmt.Errorf("--ztunnel.refresh-interval %s is below 1s", o.Refresh))
	}
	if o.ProcessName == "" {
		errs = append(errs, errors.New("--ztunnel.process-name must not be empty"))
	}
	return errors.Join(errs...)
}
