package app

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/headroom-dev/headroom/internal/loopback"
	"github.com/headroom-dev/headroom/internal/servingcert"
)

// ExtProcTLS is the transport of the ext_proc port. TLS is the default,
// as in the GIE reference picker (--secure-serving, self-signed when no
// certificate is given): the InferencePool API says a gateway connects to
// its endpoint picker over TLS by default, and the GIE charts tell Istio
// to (a DestinationRule with tls.mode SIMPLE). Gateways verify nothing by
// default; a certificate from files, and client certificates checked
// against a CA, are there for those that do.
type ExtProcTLS struct {
	// Insecure serves plaintext; only on a loopback address.
	Insecure bool
	// CertFile and KeyFile are the serving pair (PEM); empty: a
	// self-signed certificate generated at start.
	CertFile, KeyFile string
	// ClientCAFile, when set, makes client certificates required and
	// verified against it.
	ClientCAFile string
	// ReloadInterval is how often the files are checked for a change.
	ReloadInterval time.Duration
}

// DefaultExtProcTLS is TLS with a self-signed certificate.
func DefaultExtProcTLS() ExtProcTLS { return ExtProcTLS{ReloadInterval: 10 * time.Second} }

// AddFlags registers the flags.
func (o *ExtProcTLS) AddFlags(fs *flag.FlagSet) {
	fs.BoolVar(&o.Insecure, "extproc.insecure", o.Insecure, "serve ext_proc in plaintext instead of TLS (loopback addresses only: tests and local runs)")
	fs.StringVar(&o.CertFile, "extproc.tls-cert-file", o.CertFile, "ext_proc serving certificate, PEM (empty: a self-signed one is generated at start); re-read when it changes")
	fs.StringVar(&o.KeyFile, "extproc.tls-key-file", o.KeyFile, "ext_proc serving private key, PEM")
	fs.StringVar(&o.ClientCAFile, "extproc.client-ca-file", o.ClientCAFile, "CA bundle the gateway's client certificate must chain to (empty: no client certificate asked)")
	fs.DurationVar(&o.ReloadInterval, "extproc.tls-reload-interval", o.ReloadInterval, "how often the certificate, key and CA files are checked for a change")
}

// Validate checks the options against the ext_proc listen address.
func (o *ExtProcTLS) Validate(listen string) error {
	var errs []error
	if o.Insecure {
		if !loopback.Address(listen) {
			errs = append(errs, fmt.Errorf("--extproc.insecure listens only on loopback; --extproc.listen-address is %q", listen))
		}
		if o.CertFile != "" || o.KeyFile != "" || o.ClientCAFile != "" {
			errs = append(errs, errors.New("--extproc.insecure contradicts --extproc.tls-cert-file, --extproc.tls-key-file and --extproc.client-ca-file"))
		}
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("--extproc.tls-cert-file and --extproc.tls-key-file go together"))
	}
	if o.ReloadInterval < 10*time.Millisecond || o.ReloadInterval > time.Hour {
		errs = append(errs, fmt.Errorf("--extproc.tls-reload-interval %s: want 10ms to 1h", o.ReloadInterval))
	}
	return errors.Join(errs...)
}

// credentials returns the gRPC server option of the ext_proc transport
// and the certificate source to keep current (nil when plaintext).
// hosts name a self-signed certificate.
func (o *ExtProcTLS) credentials(hosts []string, logger *slog.Logger) ([]grpc.ServerOption, *servingcert.Source, error) {
	if o.Insecure {
		logger.Warn("ext_proc serves plaintext (--extproc.insecure, loopback only)")
		return nil, nil, nil
	}
	var (
		src *servingcert.Source
		err error
	)
	if o.CertFile != "" {
		src, err = servingcert.FromFiles(o.CertFile, o.KeyFile, o.ClientCAFile, logger)
	} else {
		src, err = servingcert.SelfSigned(hosts, o.ClientCAFile, logger)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("ext_proc TLS: %w", err)
	}
	logger.Info("ext_proc serves TLS", "self_signed", o.CertFile == "", "client_certificates", o.ClientCAFile != "")
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(src.ServerConfig()))}, src, nil
}
