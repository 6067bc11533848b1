// Package stream pushes the agent's node report to every picker replica.
//
// The picker's headless Service name resolves to one address per replica;
// the streamer re-resolves it on an interval and keeps one gRPC stream per
// replica. Each new report replaces the previous one: while a replica is
// unreachable only the newest report is held for it (one pointer shared by
// all replicas), so memory stays bounded however long it is down. A stream
// starts with the newest report and then carries every new one. Connection
// retries use gRPC's exponential backoff with jitter.
package stream

import (
	"errors"
	"flag"
	"fmt"
	"github.com/headroom-dev/headroom/internal/loopback"
	"net"
	"strings"
	"time"
)

// Options configures the streamer. An empty Addresses turns streaming off.
type Options struct {
	// Addresses is a comma-separated list of host:port. A host that
	// resolves to several IPs (a headless Service) gives one stream each.
	Addresses       string
	ResolveInterval time.Duration
	// CAFile verifies the pickers' certificates (empty: system roots).
	CAFile string
	// ServerName overrides the name verified in the pickers' certificates
	// (default: the host of each address).
	ServerName string
	// CertFile and KeyFile are the agent's client certificate (mTLS).
	CertFile, KeyFile string
	// TokenFile is a projected ServiceAccount token sent as a bearer token.
	TokenFile string
	// Insecure sends reports in plaintext without credentials; only
	// loopback IP literals are allowed (not names such as localhost).
	Insecure bool
	// MaxBackoff caps the delay between connection attempts.
	MaxBackoff time.Duration
}

// DefaultOptions returns streaming off, with production defaults for the rest.
func DefaultOptions() Options {
	return Options{ResolveInterval: 30 * time.Second, TokenFile: "", MaxBackoff: 15 * time.Second}
}

// AddFlags registers the --picker.* flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Addresses, "picker.addresses", o.Addresses, "comma-separated host:port of the pickers' telemetry ingest; a headless Service name gives one stream per replica (empty: do not stream)")
	fs.DurationVar(&o.ResolveInterval, "picker.resolve-interval", o.ResolveInterval, "how often to re-resolve the picker addresses")
	fs.StringVar(&o.CAFile, "picker.ca-file", o.CAFile, "CA bundle that signs the pickers' certificates (empty: system roots)")
	fs.StringVar(&o.ServerName, "picker.server-name", o.ServerName, "name to verify in the pickers' certificates (empty: the address's host)")
	fs.StringVar(&o.CertFile, "picker.cert-file", o.CertFile, "client certificate for mTLS; its common name must be this node's name")
	fs.StringVar(&o.KeyFile, "picker.key-file", o.KeyFile, "private key of --picker.cert-file")
	fs.StringVar(&o.TokenFile, "picker.token-file", o.TokenFile, "projected ServiceAccount token (audience headroom-picker) sent with each stream")
	fs.BoolVar(&o.Insecure, "picker.insecure", o.Insecure, "plaintext and no credentials, for local runs: loopback IP literals only (127.0.0.1, [::1]; not localhost)")
	fs.DurationVar(&o.MaxBackoff, "picker.max-backoff", o.MaxBackoff, "longest wait between reconnection attempts")
}

// Enabled reports whether any picker address is set.
func (o *Options) Enabled() bool { return strings.TrimSpace(o.Addresses) != "" }

// Targets returns the parsed addresses.
func (o *Options) Targets() ([]Target, error) {
	var out []Target
	var errs []error
	for a := range strings.SplitSeq(o.Addresses, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a)
		if err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("picker address %q: want host:port", a))
			continue
		}
		out = append(out, Target{Host: host, Port: port})
	}
	return out, errors.Join(errs...)
}

// Validate checks the options.
func (o *Options) Validate() error {
	if !o.Enabled() {
		return nil
	}
	targets, err := o.Targets()
	errs := []error{err}
	if o.ResolveInterval < time.Second {
		errs = append(errs, fmt.Errorf("--picker.resolve-interval must be at least 1s, got %s", o.ResolveInterval))
	}
	if o.MaxBackoff < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("--picker.max-backoff must be at least 100ms, got %s", o.MaxBackoff))
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("--picker.cert-file and --picker.key-file go together"))
	}
	if o.Insecure {
		if o.CertFile != "" || o.TokenFile != "" || o.CAFile != "" {
			errs = append(errs, errors.New("--picker.insecure cannot be combined with TLS or token flags"))
		}
		for _, t := range targets {
			if !loopback.Host(t.Host) {
				errs = append(errs, fmt.Errorf("--picker.insecure allows only loopback IP literals (127.0.0.1, ::1), not %q", t.Host))
			}
		}
	} else if o.CertFile == "" && o.TokenFile == "" {
		errs = append(errs, errors.New("set --picker.token-file or --picker.cert-file: the picker accepts only authenticated reports (or --picker.insecure on loopback)"))
	}
	return errors.Join(errs...)
}

// Target is one configured picker address.
type Target struct{ Host, Port string }
