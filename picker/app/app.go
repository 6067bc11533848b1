package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/headroom-dev/headroom/internal/certreload"
	"github.com/headroom-dev/headroom/internal/version"
	"github.com/headroom-dev/headroom/picker/auth"
	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Picker is one running headroom-picker.
type Picker struct {
	opts   Options
	logger *slog.Logger
	ingest *ingest.Server
	grpc   *grpc.Server
	http   *http.Server
	ingLn  net.Listener
	httpLn net.Listener
	route  *routing
}

// New builds the picker and binds its listeners.
func New(opts Options, logger *slog.Logger) (*Picker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	authn, err := authenticator(opts, logger)
	if err != nil {
		return nil, err
	}
	// The report size limit and keepalives that match the agents'.
	srvOpts := ingest.GRPCOptions(opts.MaxReportBytes)
	if opts.Auth != AuthInsecure {
		cfg, err := serverTLS(opts, logger)
		if err != nil {
			return nil, err
		}
		srvOpts = append(srvOpts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	p := &Picker{opts: opts, logger: logger}
	p.ingest = ingest.NewServer(ingest.NewStore(opts.TTLIntervals, nil), authn, opts.Name, logger.With("component", "ingest"))
	p.grpc = grpc.NewServer(srvOpts...)
	telemetryv1.RegisterTelemetryServiceServer(p.grpc, p.ingest)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), p.ingest.Metrics(),
		version.Get().Collector())
	if p.route, err = newRouting(opts, p.Store(), reg, logger); err != nil {
		return nil, err
	}
	reg.MustRegister(newViewMetrics(p.route.refresher.Current))
	reg.MustRegister(newHeldOutMetrics(p.route.refresher.Current, p.route.router.picker.HeldOut))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.route.ready() {
			http.Error(w, "not ready: the pool is not synced or has no ready endpoint", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	p.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	if p.ingLn, err = net.Listen("tcp", opts.IngestAddress); err != nil {
		p.route.closeListeners()
		return nil, fmt.Errorf("listen on %s: %w", opts.IngestAddress, err)
	}
	if p.httpLn, err = net.Listen("tcp", opts.MetricsAddress); err != nil {
		_ = p.ingLn.Close()
		p.route.closeListeners()
		return nil, fmt.Errorf("listen on %s: %w", opts.MetricsAddress, err)
	}
	return p, nil
}

// IngestAddr, MetricsAddr, ExtProcAddr and HealthAddr are the bound
// addresses.
func (p *Picker) IngestAddr() net.Addr  { return p.ingLn.Addr() }
func (p *Picker) MetricsAddr() net.Addr { return p.httpLn.Addr() }
func (p *Picker) ExtProcAddr() net.Addr { return p.route.extLn.Addr() }
func (p *Picker) HealthAddr() net.Addr  { return p.route.healthLn.Addr() }

// Store is the node store the ingest fills.
func (p *Picker) Store() *ingest.Store { return p.ingest.Store() }

// Run serves until ctx ends or a server fails, then stops gracefully.
func (p *Picker) Run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	errc := make(chan error, 6)
	go func() { errc <- p.grpc.Serve(p.ingLn) }()
	go func() { errc <- p.http.Serve(p.httpLn) }()
	// The request path's own goroutines (pool watch, view refresh) live
	// until the drain ends: requests are still routed meanwhile, and by
	// the newest reports and pods, not by the view at SIGTERM.
	routeCtx, routeCancel := context.WithCancel(context.WithoutCancel(parent))
	defer routeCancel()
	p.route.run(routeCtx, errc)
	p.logger.Info("picker started", append([]any{"name", p.opts.Name, "ingest", p.IngestAddr().String(), "metrics", p.MetricsAddr().String(), "auth", p.opts.Auth},
		version.Get().LogAttrs()...)...)
	go p.prune(ctx)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	// Readiness turns NOT_SERVING, then the drain; the view keeps
	// refreshing until it ends.
	p.route.stop(p.opts.DrainDelay, p.opts.ShutdownGrace)
	routeCancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
	defer scancel()
	if serr := p.http.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	// Agent streams never end by themselves: Stop, not GracefulStop.
	p.grpc.Stop()
	return err
}

func authenticator(o Options, logger *slog.Logger) (auth.Authenticator, error) {
	switch o.Auth {
	case AuthMTLS:
		return auth.MTLS{}, nil
	case AuthInsecure:
		logger.Warn("ingest accepts unauthenticated reports (insecure mode, loopback only)")
		return auth.Insecure{}, nil
	}
	cfg, err := restConfig(o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for TokenReview: %w", err)
	}
	reviews, err := auth.NewTokenReviewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for TokenReview: %w", err)
	}
	return auth.NewTokenReview(reviews, o.Token, logger.With("component", "auth"))
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return rest.InClusterConfig()
	}
	return clientcmd.BuildConfigFromFlags("", kubeconfig)
}

// serverTLS serves the ingest's key pair, parsed once and again when its
// files change (a rotated one is used; a handshake costs no file reads
// or parsing), and, for mtls, requires verified client certificates.
func serverTLS(o Options, logger *slog.Logger) (*tls.Config, error) {
	pair, err := certreload.New(o.CertFile, o.KeyFile, logger.With("component", "ingest-tls"))
	if err != nil {
		return nil, fmt.Errorf("ingest TLS certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: pair.GetCertificate}
	if o.Auth == AuthMTLS {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s: no PEM certificates", o.ClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// pruneAfter is how long a node with no stream and no new report is kept
// (nodes the autoscaler removed); well past any report's TTL.
const pruneAfter = 10 * time.Minute

func (p *Picker) prune(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := p.Store().Prune(pruneAfter); n > 0 {
				p.logger.Info("forgot nodes with no agent stream and no report for a while", "nodes", n, "after", pruneAfter)
			}
		}
	}
}
