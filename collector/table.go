package collector

import (
	"flag"
	"fmt"
	"slices"

	"github.com/headroom-dev/headroom/collector/dcgm"
	"github.com/headroom-dev/headroom/collector/dcgm/godcgm"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/collector/ztunnel"
)

// Entry is one row of the collector table.
type Entry struct {
	Name      string
	DefaultOn bool
	Help      string
	New       Factory
}

// Table is the explicit list of every source the agent knows, in the order
// they appear in snapshots and metrics.
func Table() []Entry {
	var mesh meshShared
	return []Entry{
		{
			Name: nvml.Name, DefaultOn: true,
			Help: "GPUs through NVML: memory, utilisation, SM activity, thermals, ECC, processes, MIG, Xid",
			New: func(d Deps) (Source, error) {
				if d.GPU == nil {
					return nil, fmt.Errorf("no GPU backend configured")
				}
				return nvml.New(d.Ctx, d.GPU, d.Logger), nil
			},
		},
		{
			// dcgm lays its fields on the nvml part's GPUs: keep it after
			// nvml. Default on: without a host engine it reports down and
			// succeeds.
			Name: dcgm.Name, DefaultOn: true,
			Help: "DCGM profiling fields (SM, tensor and DRAM activity, PCIe and NVLink bytes) when a host engine is there; NVML's GPM values stand otherwise",
			New: func(d Deps) (Source, error) {
				lib := d.DCGM.Library
				if lib == nil {
					lib = godcgm.New()
				}
				return dcgm.New(d.Ctx, lib, d.DCGM, d.Logger), nil
			},
		},
		{
			// pods joins on the nvml part's processes: keep it after nvml.
			Name: pods.Name, DefaultOn: true,
			Help: "pod and container of each GPU and process (kubelet pod-resources, CRI, /proc), container memory and CPU from cgroup v2",
			New: func(d Deps) (Source, error) {
				src, err := pods.New(d.Ctx, d.Pods, d.Logger)
				if err != nil {
					return nil, err
				}
				mesh.pods = src
				return src, nil
			},
		},
		{
			// modelserver reads the pods part's GPU pods and attaches a
			// reading to each: keep it after pods. Default on: no GPU pods
			// and no standalone endpoints means nothing to scrape.
			Name: modelserver.Name, DefaultOn: true,
			Help: "each GPU pod's model-server metrics (vLLM, SGLang, TRT-LLM, Triton): queue, running batch, KV-cache use, LoRA adapters",
			New: func(d Deps) (Source, error) {
				return modelserver.New(d.Ctx, d.ModelServer, d.Logger)
			},
		},
		{
			// Default on: no ztunnel on the node is a normal state.
			Name: ztunnel.Name, DefaultOn: true,
			Help: "Istio's node proxy (ztunnel): found by pod label and process name, its container memory and CPU from cgroup v2",
			New: func(d Deps) (Source, error) {
				f, err := mesh.finder(d)
				if err != nil {
					return nil, err
				}
				return ztunnel.New(f, d.Logger), nil
			},
		},
		{
			// Needs CAP_BPF and CAP_PERFMON; without them it fails at
			// start, logged once, and reports failed on every tick.
			Name: ztunnel.EBPFName, DefaultOn: true,
			Help: "ztunnel's bytes and connections by pod and leg and its CPU per thread, from eBPF (tp_btf) programs, with the programs' own cost",
			New: func(d Deps) (Source, error) {
				f, err := mesh.finder(d)
				if err != nil {
					return nil, err
				}
				return ztunnel.NewEBPF(f, d.Ztunnel, d.Logger)
			},
		},
	}
}

// meshShared lets the ztunnel sources share one finder, which names pods
// from the pods source's runtime view. Factories run one after another,
// in table order.
type meshShared struct {
	pods *pods.Source
	f    *ztunnel.Finder
}

func (m *meshShared) finder(d Deps) (*ztunnel.Finder, error) {
	if m.f != nil {
		return m.f, nil
	}
	var runtime ztunnel.Runtime
	if m.pods != nil {
		runtime = m.pods.RuntimeView
	}
	f, err := ztunnel.NewFinder(d.Ztunnel, runtime)
	m.f = f
	return f, err
}

// Switches holds the --collector.<name> flags of a table.
type Switches struct {
	table []Entry
	on    map[string]*bool
}

// AddFlags registers --collector.<name> for every entry of table.
func AddFlags(fs *flag.FlagSet, table []Entry) *Switches {
	s := &Switches{table: table, on: make(map[string]*bool, len(table))}
	for _, e := range table {
		s.on[e.Name] = fs.Bool("collector."+e.Name, e.DefaultOn,
			fmt.Sprintf("enable the %s collector: %s", e.Name, e.Help))
	}
	return s
}

// Enabled returns the names of the switched-on collectors, in table order.
func (s *Switches) Enabled() []string {
	var names []string
	for _, e := range s.table {
		if *s.on[e.Name] {
			names = append(names, e.Name)
		}
	}
	return names
}

// Build creates the enabled sources. A factory error does not stop the
// agent: that source is reported failed on every tick with the reason.
func Build(table []Entry, enabled []string, deps Deps) []Enabled {
	var out []Enabled
	for _, e := range table {
		if !slices.Contains(enabled, e.Name) {
			continue
		}
		logger := deps.Logger.With("collector", e.Name)
		d := deps
		d.Logger = logger
		src, err := e.New(d)
		if err != nil {
			logger.Error("collector disabled: it could not start", "err", err)
		}
		out = append(out, Enabled{Name: e.Name, Source: src, InitErr: err})
	}
	return out
}
