package agent

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/dcgm"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/collector/ztunnel"
	"github.com/headroom-dev/headroom/sim/gpusim"
)

// Limits and defaults of the sampling clock.
const (
	DefaultInterval = time.Second
	MinInterval     = 100 * time.Millisecond
)

// GPU backends.
const (
	BackendNVML = "nvml"
	BackendSim  = "sim"
)

// Options configures the agent. Every field has a flag (AddFlags) and a
// HEADROOM_* environment variable.
type Options struct {
	NodeName      string
	ListenAddress string
	// DebugAddress, when set, serves Go's pprof profiles there (off by
	// default; bind it to localhost).
	DebugAddress string
	Interval     time.Duration
	// Deadline bounds each collector per sample; 0 means 80% of Interval.
	Deadline time.Duration

	GPUBackend   string
	SimProfile   string
	SimSeed      uint64
	SimProcesses int
	LogLevel     string
	LogFormat    string
	// Pods configures the pods (attribution) collector.
	Pods pods.Options
	// DCGM configures the dcgm collector.
	DCGM dcgm.Options
	// ModelServer configures the modelserver collector.
	ModelServer modelserver.Options
	// Ztunnel configures the ztunnel and ztunnel_ebpf collectors.
	Ztunnel ztunnel.Options
	// Stream configures the report stream to the pickers.
	Stream stream.Options
	// Collectors, when non-nil, is exactly the set of collectors to run,
	// whatever the --collector.* flags say (tests and the demo).
	Collectors []string
	collectors *collector.Switches
	table      []collector.Entry

	// GPULibrary, when set, replaces the backend chosen by GPUBackend
	// (tests and the demo pass a simulator they drive themselves).
	GPULibrary nvml.Library
}

// DefaultOptions returns the defaults, with the node name from the host.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	return Options{
		NodeName:      host,
		ListenAddress: ":9400",
		Interval:      DefaultInterval,
		GPUBackend:    BackendNVML,
		SimProfile:    "dgxh100",
		SimSeed:       1,
		SimProcesses:  4,
		LogLevel:      "info",
		LogFormat:     "text",
		Pods:          pods.DefaultOptions(),
		DCGM:          dcgm.DefaultOptions(),
		ModelServer:   modelserver.DefaultOptions(),
		Ztunnel:       ztunnel.DefaultOptions(),
		Stream:        stream.DefaultOptions(),
		table:         collector.Table(),
	}
}

// AddFlags registers the options' flags on fs, with o's values as defaults.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "node name reported in metrics (set from the downward API in Kubernetes)")
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address of /metrics, /healthz and /readyz")
	fs.StringVar(&o.DebugAddress, "debug.listen-address", o.DebugAddress, "serve Go pprof profiles on this address (empty: off; keep it on localhost)")
	fs.DurationVar(&o.Interval, "sample-interval", o.Interval, "how often to sample every source (minimum 100ms)")
	fs.DurationVar(&o.Deadline, "collector.deadline", o.Deadline, "per-collector time limit per sample (0: 80% of --sample-interval)")
	fs.StringVar(&o.GPUBackend, "gpu-backend", o.GPUBackend, "GPU backend: nvml (the driver's libnvidia-ml) or sim (simulated GPUs)")
	fs.StringVar(&o.SimProfile, "sim-profile", o.SimProfile, fmt.Sprintf("simulated server with --gpu-backend=sim: one of %v", gpusim.Profiles()))
	fs.Uint64Var(&o.SimSeed, "sim-seed", o.SimSeed, "seed of the simulated GPUs' UUIDs and load")
	fs.IntVar(&o.SimProcesses, "sim-processes", o.SimProcesses, "compute processes per simulated GPU")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "text or json")
	o.Pods.AddFlags(fs)
	o.DCGM.AddFlags(fs)
	o.ModelServer.AddFlags(fs)
	o.Ztunnel.AddFlags(fs)
	o.Stream.AddFlags(fs)
	if o.table == nil {
		o.table = collector.Table()
	}
	o.collectors = collector.AddFlags(fs, o.table)
}

// Enabled returns the collectors switched on.
func (o *Options) Enabled() []string {
	if o.Collectors != nil {
		return o.Collectors
	}
	if o.collectors == nil {
		var names []string
		for _, e := range collector.Table() {
			if e.DefaultOn {
				names = append(names, e.Name)
			}
		}
		return names
	}
	return o.collectors.Enabled()
}

// CollectorDeadline is the effective per-collector deadline.
func (o *Options) CollectorDeadline() time.Duration {
	if o.Deadline > 0 {
		return o.Deadline
	}
	return o.Interval * 4 / 5
}

// Validate reports every invalid option at once.
func (o *Options) Validate() error {
	var errs []error
	if o.NodeName == "" {
		errs = append(errs, errors.New("--node-name is empty and the host name is unknown"))
	}
	if err := validateAddress(o.ListenAddress); err != nil {
		errs = append(errs, fmt.Errorf("--listen-address: %w", err))
	}
	if o.DebugAddress != "" {
		if err := validateAddress(o.DebugAddress); err != nil {
			errs = append(errs, fmt.Errorf("--debug.listen-address: %w", err))
		}
	}
	if o.Interval < MinInterval {
		errs = append(errs, fmt.Errorf("--sample-interval %s is below the minimum %s", o.Interval, MinInterval))
	}
	if o.Deadline < 0 || o.Deadline > o.Interval {
		errs = append(errs, fmt.Errorf("--collector.deadline %s must be between 0 and --sample-interval (%s)", o.Deadline, o.Interval))
	}
	switch o.GPUBackend {
	case BackendNVML:
	case BackendSim:
		if !slices.Contains(gpusim.Profiles(), o.SimProfile) {
			errs = append(errs, fmt.Errorf("--sim-profile %q is not one of %v (the simulator needs a cgo build)", o.SimProfile, gpusim.Profiles()))
		}
	default:
		errs = append(errs, fmt.Errorf("--gpu-backend %q: want %q or %q", o.GPUBackend, BackendNVML, BackendSim))
	}
	if slices.Contains(o.Enabled(), pods.Name) {
		if err := o.Pods.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if slices.Contains(o.Enabled(), modelserver.Name) {
		if err := o.ModelServer.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if slices.Contains(o.Enabled(), ztunnel.Name) || slices.Contains(o.Enabled(), ztunnel.EBPFName) {
		if err := o.Ztunnel.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if slices.Contains(o.Enabled(), dcgm.Name) {
		if err := o.DCGM.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := o.Stream.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.SimProcesses < 0 {
		errs = append(errs, fmt.Errorf("--sim-processes %d is negative", o.SimProcesses))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.LogLevel))
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", o.LogFormat))
	}
	return errors.Join(errs...)
}

func validateAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number in 0-65535", addr, port)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: host must be empty, an IP address or localhost", addr)
	}
	return nil
}

// NewLogger builds the logger the options ask for; call after Validate.
func (o *Options) NewLogger(w *os.File) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(o.LogLevel))
	hopts := &slog.HandlerOptions{Level: lvl}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, hopts))
	}
	return slog.New(slog.NewTextHandler(w, hopts))
}
