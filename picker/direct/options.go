package direct

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/collector/modelserver"
)

// Options bounds what the picker reads itself. The defaults follow the
// reference endpoint picker's model-server scrape (http, /metrics, the
// endpoint's own port) with a budget on top: at most MaxEndpoints
// servers per round, Concurrency at a time, each within Timeout.
type Options struct {
	// Enabled turns the fallback on.
	Enabled bool
	// Port is the metrics port; 0 reads the endpoint's own (serving) port.
	Port int
	// Path is the metrics path; empty: the engine's own (/metrics, and
	// /prometheus/metrics for trtllm-serve, whose /metrics is JSON).
	Path string
	// Scheme is http or https.
	Scheme string
	// InsecureSkipVerify skips verifying an https server's certificate
	// (model servers serve self-signed ones; the reference picker skips
	// it by default too).
	InsecureSkipVerify bool
	// Engine is the metric dialect of a server no report has named one for.
	Engine string
	// Interval is the time between two rounds.
	Interval time.Duration
	// Timeout bounds one read (connect, request, body).
	Timeout time.Duration
	// MaxEndpoints bounds the servers read in one round; more take turns.
	MaxEndpoints int
	// Concurrency bounds the reads in flight.
	Concurrency int
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{
		Enabled: true, Scheme: "http", InsecureSkipVerify: true, Engine: string(modelserver.VLLM),
		Interval: 100 * time.Millisecond, Timeout: time.Second, MaxEndpoints: 64, Concurrency: 8,
	}
}

// AddFlags registers the --direct-scrape.* flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Enabled, "direct-scrape.enabled", o.Enabled, "read a model server's metrics from the picker while its node has no fresh agent report (agent gone or not deployed)")
	fs.IntVar(&o.Port, "direct-scrape.metrics-port", o.Port, "model servers' metrics port (0: the endpoint's own port)")
	fs.StringVar(&o.Path, "direct-scrape.metrics-path", o.Path, "model servers' metrics path (empty: the engine's own, /metrics or trtllm-serve's /prometheus/metrics)")
	fs.StringVar(&o.Scheme, "direct-scrape.metrics-scheme", o.Scheme, "http or https")
	fs.BoolVar(&o.InsecureSkipVerify, "direct-scrape.https-insecure-skip-verify", o.InsecureSkipVerify, "with https, do not verify the model server's certificate")
	fs.StringVar(&o.Engine, "direct-scrape.engine", o.Engine, "metric dialect of a server no report has named one for: "+engineList())
	fs.DurationVar(&o.Interval, "direct-scrape.interval", o.Interval, "time between two rounds of reads")
	fs.DurationVar(&o.Timeout, "direct-scrape.timeout", o.Timeout, "bound on one read")
	fs.IntVar(&o.MaxEndpoints, "direct-scrape.max-endpoints", o.MaxEndpoints, "most servers read in one round (more take turns)")
	fs.IntVar(&o.Concurrency, "direct-scrape.concurrency", o.Concurrency, "most reads in flight")
}

func engineList() string {
	var names []string
	for _, e := range modelserver.Engines() {
		names = append(names, string(e))
	}
	return strings.Join(names, ", ")
}

// Validate lists every problem.
func (o *Options) Validate() error {
	if !o.Enabled {
		return nil
	}
	var errs []error
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--direct-scrape.metrics-port %d: want 0 to 65535", o.Port))
	}
	if o.Path != "" && (!strings.HasPrefix(o.Path, "/") || strings.ContainsAny(o.Path, "?# \t\r\n")) {
		errs = append(errs, fmt.Errorf("--direct-scrape.metrics-path %q: want an absolute path without query or fragment", o.Path))
	}
	if o.Scheme != "http" && o.Scheme != "https" {
		errs = append(errs, fmt.Errorf("--direct-scrape.metrics-scheme %q: want http or https", o.Scheme))
	}
	if _, ok := modelserver.ParseEngine(o.Engine); !ok {
		errs = append(errs, fmt.Errorf("--direct-scrape.engine %q: want one of %s", o.Engine, engineList()))
	}
	if o.Interval < 10*time.Millisecond || o.Interval > time.Minute {
		errs = append(errs, fmt.Errorf("--direct-scrape.interval %s: want 10ms to 1m", o.Interval))
	}
	if o.Timeout < 10*time.Millisecond || o.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("--direct-scrape.timeout %s: want 10ms to 1m", o.Timeout))
	}
	if o.MaxEndpoints < 1 || o.MaxEndpoints > 4096 {
		errs = append(errs, fmt.Errorf("--direct-scrape.max-endpoints %d: want 1 to 4096", o.MaxEndpoints))
	}
	if o.Concurrency < 1 || o.Concurrency > 256 {
		errs = append(errs, errors.New("--direct-scrape.concurrency: want 1 to 256"))
	}
	return errors.Join(errs...)
}

// maxAge is how long a reading is used: a round, a read and a round more.
func (o *Options) maxAge() time.Duration { return 2*o.Interval + o.Timeout }
