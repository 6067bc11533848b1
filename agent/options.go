package agent

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/builtin"
)

// Limits and defaults of the sampling clock.
const (
	DefaultInterval = time.Second
	MinInterval     = 100 * time.Millisecond
)

// Options configures the agent. Every field has a flag (AddFlags) and a
// HEADROOM_* environment variable; so do the collectors' own options.
type Options struct {
	NodeName      string
	ListenAddress string
	// DebugAddress, when set, serves Go's pprof profiles there (off by
	// default; bind it to localhost).
	DebugAddress string
	Interval     time.Duration
	// Deadline bounds each collector and each enrich step per sample; 0
	// means 80% of Interval.
	Deadline  time.Duration
	LogLevel  string
	LogFormat string
	// Host is where the host's /proc and cgroup v2 mount are, for the
	// collectors that read them.
	Host collector.Host
	// Collectors is the collector table: every collector the agent may
	// run, with its own options, in order. DefaultOptions holds the
	// built-in table (collector/builtin); tests, the demo and
	// --gpu-backend=sim give their own GPUs with Collectors.With, or a
	// table of their own.
	Collectors collector.Table
	// Stream configures the report stream to the pickers.
	Stream stream.Options

	// switches are the --collector.<name> flags; nil before AddFlags.
	switches *collector.Switches
}

// DefaultOptions returns the defaults, with the node name from the host.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	return Options{
		NodeName:      host,
		ListenAddress: ":9400",
		Interval:      DefaultInterval,
		LogLevel:      "info",
		LogFormat:     "text",
		Host:          collector.DefaultHost(),
		Collectors:    builtin.Table(),
		Stream:        stream.DefaultOptions(),
	}
}

// AddFlags registers the options' flags on fs, with o's values as defaults:
// the agent's own, the host paths, every collector's switch and options,
// and the stream's.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", o.NodeName, "node name reported in metrics (set from the downward API in Kubernetes)")
	fs.StringVar(&o.ListenAddress, "listen-address", o.ListenAddress, "address of /metrics, /healthz and /readyz")
	fs.StringVar(&o.DebugAddress, "debug.listen-address", o.DebugAddress, "serve Go pprof profiles on this address (empty: off; keep it on localhost)")
	fs.DurationVar(&o.Interval, "sample-interval", o.Interval, "how often to sample every source (minimum 100ms)")
	fs.DurationVar(&o.Deadline, "collector.deadline", o.Deadline, "per-collector time limit per sample (0: 80% of --sample-interval)")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "text or json")
	o.Host.AddFlags(fs)
	o.switches = o.Collectors.AddFlags(fs)
	o.Stream.AddFlags(fs)
}

// Enabled returns the collectors switched on, in table order: the
// --collector.<name> flags once AddFlags has run, else the table's
// defaults.
func (o *Options) Enabled() []string {
	if o.switches == nil {
		return o.Collectors.DefaultEnabled()
	}
	return o.switches.Enabled()
}

// CollectorDeadline is the effective per-collector deadline.
func (o *Options) CollectorDeadline() time.Duration {
	if o.Deadline > 0 {
		return o.Deadline
	}
	return o.Interval * 4 / 5
}

// Validate reports every invalid option at once; it changes nothing.
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
	errs = append(errs, o.Host.Validate(), o.Collectors.Validate(o.Enabled()), o.Stream.Validate())
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
