package ztunnel

import (
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/cri"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/snapshot"
)

// finderKey is where the two sources of one agent share their finder.
const finderKey = "ztunnel/finder"

// Entries are the rows of the ztunnel and ztunnel_ebpf collectors in the
// collector table. They share options o (their flags are registered once)
// and one finder per agent, which names pods from the pods source's
// runtime view when that source is on.
func Entries(o Options) []collector.Entry {
	opts := &o
	finder := func(env collector.Env) (*Finder, error) {
		f, err := env.Shared(finderKey, func() (any, error) {
			var runtime Runtime
			if p, ok := env.Source(pods.Name).(interface{ RuntimeView() *cri.View }); ok {
				runtime = p.RuntimeView
			}
			return NewFinder(*opts, env.Host, runtime)
		})
		if err != nil {
			return nil, err
		}
		return f.(*Finder), nil
	}
	return []collector.Entry{
		{
			// Default on: no ztunnel on the node is a normal state.
			Name: Name, DefaultOn: true,
			Help:    "Istio's node proxy (ztunnel): found by pod label and process name, its container memory and CPU from cgroup v2",
			Options: opts,
			Owns:    []snapshot.Section{snapshot.SectionZtunnel},
			Uses:    []string{pods.Name},
			New: func(env collector.Env) (collector.Source, error) {
				f, err := finder(env)
				if err != nil {
					return nil, err
				}
				return New(f, env.Logger), nil
			},
		},
		{
			// Needs CAP_BPF and CAP_PERFMON; without them it fails at
			// start, logged once, and reports failed on every tick.
			Name: EBPFName, DefaultOn: true,
			Help:    "ztunnel's bytes and connections by pod and leg and its CPU per thread, from eBPF (tp_btf) programs, with the programs' own cost",
			Options: opts,
			Owns:    []snapshot.Section{snapshot.SectionZtunnelTraffic},
			Uses:    []string{pods.Name},
			New: func(env collector.Env) (collector.Source, error) {
				f, err := finder(env)
				if err != nil {
					return nil, err
				}
				return NewEBPF(f, *opts, env.Logger)
			},
		},
	}
}
