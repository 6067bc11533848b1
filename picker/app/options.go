// Package app is headroom-picker's process: its options, the telemetry
// ingest server with its credentials, and the metrics and health
// endpoints. The request path (ext_proc) joins it in picker/extproc.
package app

import (
	"errors"
	"flag"
	"fmt"
	"github.com/headroom-dev/headroom/internal/loopback"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/headroom-dev/headroom/picker/auth"
	"github.com/headroom-dev/headroom/picker/direct"
	"github.com/headroom-dev/headroom/picker/extproc"
	"github.com/headroom-dev/headroom/picker/ingest"
	"github.com/headroom-dev/headroom/picker/pool"
)

// Auth modes of the ingest server.
const (
	AuthToken    = "token"
	AuthMTLS     = "mtls"
	AuthInsecure = "insecure"
)

// Options configures the picker.
type Options struct {
	Name           string
	IngestAddress  string
	MetricsAddress string
	// Auth is token, mtls or insecure.
	Auth string
	// CertFile and KeyFile are the ingest server's TLS certificate.
	CertFile, KeyFile string
	// ClientCAFile verifies agents' client certificates (mtls).
	ClientCAFile string
	// Kubeconfig reaches the API server (TokenReview, the InferencePool)
	// from outside a cluster (empty: in-cluster configuration).
	Kubeconfig     string
	Token          auth.TokenReviewOptions
	TTLIntervals   int
	MaxReportBytes int
	LogLevel       string

	// ExtProcAddress serves the gateway's ext_proc stream; HealthAddress
	// the gRPC health services.
	ExtProcAddress, HealthAddress string
	ExtProc                       extproc.Options
	// ExtProcTLS is the ext_proc port's transport (the health port is
	// always plaintext gRPC, as the reference picker's).
	ExtProcTLS ExtProcTLS
	// Pool names the endpoints: an InferencePool or a static list.
	Pool pool.Options
	// Direct is the fallback that reads the model servers of endpoints
	// without a fresh agent report.
	Direct direct.Options
	// ScoringConfig is a scoring configuration file (empty: defaults).
	ScoringConfig string
	// ViewRefresh bounds how old the telemetry the request path sees is.
	ViewRefresh time.Duration
	// DrainDelay is how long the picker reports NOT_SERVING before it
	// stops accepting requests; ShutdownGrace how long in-flight requests
	// (streamed responses included) then get to finish.
	DrainDelay, ShutdownGrace time.Duration
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	host, _ := os.Hostname()
	return Options{
		Name: host, IngestAddress: ":9004", MetricsAddress: ":9090", Auth: AuthToken,
		Token: auth.DefaultTokenReviewOptions(), TTLIntervals: 3, MaxReportBytes: ingest.DefaultMaxReportBytes, LogLevel: "info",
		ExtProcAddress: ":9002", HealthAddress: ":9003", ExtProc: extproc.DefaultOptions(), ExtProcTLS: DefaultExtProcTLS(), Pool: pool.DefaultOptions(), Direct: direct.DefaultOptions(),
		ViewRefresh: 20 * time.Millisecond, DrainDelay: 5 * time.Second, ShutdownGrace: 20 * time.Second,
	}
}

// AddFlags registers the flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Name, "name", o.Name, "this replica's name, told to the agents (default: host name)")
	fs.StringVar(&o.IngestAddress, "ingest.listen-address", o.IngestAddress, "address of the telemetry ingest (agents stream here)")
	fs.StringVar(&o.MetricsAddress, "metrics.listen-address", o.MetricsAddress, "address of /metrics, /healthz and /readyz")
	fs.StringVar(&o.Auth, "ingest.auth", o.Auth, "how agents prove their node: token (ServiceAccount token + TokenReview), mtls (client certificate CN), insecure (loopback only)")
	fs.StringVar(&o.CertFile, "ingest.tls-cert-file", o.CertFile, "the ingest server's TLS certificate")
	fs.StringVar(&o.KeyFile, "ingest.tls-key-file", o.KeyFile, "the ingest server's TLS private key")
	fs.StringVar(&o.ClientCAFile, "ingest.client-ca-file", o.ClientCAFile, "CA that signs the agents' client certificates (mtls)")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig for the API server (TokenReview, InferencePool) outside a cluster (empty: in-cluster)")
	fs.IntVar(&o.TTLIntervals, "ingest.ttl-intervals", o.TTLIntervals, "a node whose report is older than this many of its agent's intervals is stale")
	fs.IntVar(&o.MaxReportBytes, "ingest.max-report-bytes", o.MaxReportBytes, "largest report accepted")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	o.Token.AddFlags(fs)
	fs.StringVar(&o.ExtProcAddress, "extproc.listen-address", o.ExtProcAddress, "address of the ext_proc server the gateway calls (InferencePool endpointPickerRef)")
	fs.StringVar(&o.HealthAddress, "health.listen-address", o.HealthAddress, "address of the gRPC health services (liveness, readiness, envoy.service.ext_proc.v3.ExternalProcessor)")
	fs.StringVar(&o.ScoringConfig, "scoring.config", o.ScoringConfig, "scoring configuration file, JSON or YAML, unknown fields rejected (empty: the defaults)")
	fs.DurationVar(&o.ViewRefresh, "view.refresh-interval", o.ViewRefresh, "how often new node reports are joined into the routing view")
	fs.DurationVar(&o.DrainDelay, "shutdown.drain-delay", o.DrainDelay, "on SIGTERM, how long to report NOT_SERVING before refusing new requests")
	fs.DurationVar(&o.ShutdownGrace, "shutdown.grace", o.ShutdownGrace, "then, how long in-flight requests and streamed responses get to finish (keep drain + grace under terminationGracePeriodSeconds)")
	o.ExtProc.AddFlags(fs)
	o.ExtProcTLS.AddFlags(fs)
	o.Pool.AddFlags(fs)
	o.Direct.AddFlags(fs)
}

// Validate checks the options and lists every problem.
func (o *Options) Validate() error {
	var errs []error
	for _, a := range []struct{ flag, addr string }{{"--ingest.listen-address", o.IngestAddress}, {"--metrics.listen-address", o.MetricsAddress}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.flag, a.addr, err))
		}
	}
	switch o.Auth {
	case AuthToken, AuthMTLS:
		if o.CertFile == "" || o.KeyFile == "" {
			errs = append(errs, fmt.Errorf("--ingest.auth=%s needs --ingest.tls-cert-file and --ingest.tls-key-file", o.Auth))
		}
		if o.Auth == AuthMTLS && o.ClientCAFile == "" {
			errs = append(errs, errors.New("--ingest.auth=mtls needs --ingest.client-ca-file"))
		}
		if o.Auth == AuthToken {
			if err := o.Token.Validate(); err != nil {
				errs = append(errs, err)
			}
			// Any pod can mount a token for the picker's audience: without
			// an allowlist, any workload could speak for its node.
			if len(o.Token.ServiceAccounts) == 0 {
				errs = append(errs, errors.New("--ingest.auth=token needs --auth.token.service-accounts (the agents' ServiceAccount, namespace/name)"))
			}
		}
	case AuthInsecure:
		if !loopback.Address(o.IngestAddress) {
			errs = append(errs, fmt.Errorf("--ingest.auth=insecure listens only on a loopback IP literal (127.0.0.1:PORT, [::1]:PORT); --ingest.listen-address is %q", o.IngestAddress))
		}
	default:
		errs = append(errs, fmt.Errorf("--ingest.auth %q: want token, mtls or insecure", o.Auth))
	}
	for _, a := range []struct{ flag, addr string }{{"--extproc.listen-address", o.ExtProcAddress}, {"--health.listen-address", o.HealthAddress}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.flag, a.addr, err))
		}
	}
	if err := o.ExtProc.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.ExtProcTLS.Validate(o.ExtProcAddress); err != nil {
		errs = append(errs, err)
	}
	if err := o.Pool.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := o.Direct.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.ViewRefresh < time.Millisecond || o.ViewRefresh > time.Second {
		errs = append(errs, fmt.Errorf("--view.refresh-interval %s: want 1ms to 1s", o.ViewRefresh))
	}
	if o.DrainDelay < 0 || o.ShutdownGrace < 0 {
		errs = append(errs, errors.New("--shutdown.drain-delay and --shutdown.grace must not be negative"))
	}
	if o.TTLIntervals < 1 {
		errs = append(errs, fmt.Errorf("--ingest.ttl-intervals %d: want at least 1", o.TTLIntervals))
	}
	if o.MaxReportBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("--ingest.max-report-bytes %d: want at least 1024", o.MaxReportBytes))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.LogLevel))
	}
	return errors.Join(errs...)
}
