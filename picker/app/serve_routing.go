package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/client-go/rest"

	"github.com/headroom-dev/headroom/internal/servingcert"
	"github.com/headroom-dev/headroom/picker/direct"
	"github.com/headroom-dev/headroom/picker/extproc"
	"github.com/headroom-dev/headroom/picker/ingest"
	"github.com/headroom-dev/headroom/picker/pool"
	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
)

// routing is the request path: the pool's endpoints, the view joining
// them with the node reports, the scoring, and the ext_proc and health
// servers.
type routing struct {
	source pool.Runnable
	// objectives says which requests are sheddable; nil with --endpoints.
	objectives *pool.Objectives
	targets    atomic.Pointer[[]store.Target]
	refresher  *store.Refresher
	// direct reads the servers of endpoints without a fresh report; nil
	// when --direct-scrape.enabled=false.
	direct    *direct.Scraper
	changed   chan struct{}
	router    *router
	ext       *grpc.Server
	health    *health.Server
	healthSrv *grpc.Server
	extLn     net.Listener
	healthLn  net.Listener
	// cert is the ext_proc serving certificate kept current; nil when
	// plaintext.
	cert           *servingcert.Source
	reloadInterval time.Duration
	logger         *slog.Logger
}

func newRouting(o Options, nodes *ingest.Store, reg *prometheus.Registry, logger *slog.Logger) (*routing, error) {
	var cfg *rest.Config
	if o.Pool.Pool != "" {
		c, err := restConfig(o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes client for the InferencePool: %w", err)
		}
		cfg = c
	}
	src, err := pool.New(o.Pool, cfg, logger.With("component", "pool"))
	if err != nil {
		return nil, err
	}
	scfg := scoring.DefaultConfig()
	if o.ScoringConfig != "" {
		if scfg, err = scoring.LoadConfig(o.ScoringConfig); err != nil {
			return nil, err
		}
	}
	picker, err := scoring.New(scfg, rand.NewPCG(rand.Uint64(), rand.Uint64()), nil)
	if err != nil {
		return nil, err
	}
	r := &routing{source: src, changed: make(chan struct{}, 1), logger: logger}
	r.setTargets(src.Endpoints())
	r.refresher = store.NewRefresher(func() []store.Target { return *r.targets.Load() }, nodes, o.ViewRefresh)
	if o.Direct.Enabled {
		m := direct.NewMetrics()
		reg.MustRegister(m)
		r.direct = direct.New(o.Direct, r.refresher.Current, m, logger.With("component", "direct-scrape"))
		r.refresher.SetDirect(r.direct)
	}
	r.router = &router{views: r.refresher, picker: picker, n: o.ExtProc.FallbackEndpoints, metrics: newRouteMetrics(), now: time.Now}
	reg.MustRegister(r.router.metrics, inflightCollector{targets: func() []store.Target { return *r.targets.Load() }, tracker: picker.Tracker()})
	var extOpts []extproc.ServerOption
	if cfg != nil {
		if r.objectives, err = pool.NewObjectives(cfg, o.Pool.Namespace, o.Pool.Pool, logger.With("component", "objectives")); err != nil {
			return nil, err
		}
		extOpts = append(extOpts, extproc.WithSheddable(r.objectives.Sheddable))
	}
	ext, err := extproc.New(r.router, o.ExtProc, logger.With("component", "extproc"), extOpts...)
	if err != nil {
		return nil, err
	}
	r.health = newHealth()
	creds, cert, err := o.ExtProcTLS.credentials([]string{o.Name, "localhost", "127.0.0.1", "::1"}, logger.With("component", "extproc-tls"))
	if err != nil {
		return nil, err
	}
	r.cert, r.reloadInterval = cert, o.ExtProcTLS.ReloadInterval
	r.ext = grpc.NewServer(append(o.ExtProc.GRPCServerOptions(), creds...)...)
	reg.MustRegister(extProcCollector{ext})
	extprocv3.RegisterExternalProcessorServer(r.ext, ext)
	healthpb.RegisterHealthServer(r.ext, r.health)
	r.healthSrv = grpc.NewServer()
	healthpb.RegisterHealthServer(r.healthSrv, r.health)
	if r.extLn, err = net.Listen("tcp", o.ExtProcAddress); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.ExtProcAddress, err)
	}
	if r.healthLn, err = net.Listen("tcp", o.HealthAddress); err != nil {
		_ = r.extLn.Close()
		return nil, fmt.Errorf("listen on %s: %w", o.HealthAddress, err)
	}
	return r, nil
}

func (r *routing) setTargets(eps []pool.Endpoint) {
	ts := make([]store.Target, len(eps))
	for i, e := range eps {
		ts[i] = store.NewTarget(e.Namespace, e.Name, e.IP, e.Port)
		ts[i].Node, ts[i].UID = e.Node, e.UID // a report joins only its own node's pods
	}
	r.targets.Store(&ts)
}

// run serves the request path until ctx ends; errors from the servers or
// the pool source go to errc.
func (r *routing) run(ctx context.Context, errc chan<- error) {
	go func() { errc <- r.ext.Serve(r.extLn) }()
	go func() { errc <- r.healthSrv.Serve(r.healthLn) }()
	go func() {
		if err := r.source.Run(ctx); err != nil {
			errc <- fmt.Errorf("pool: %w", err)
		}
	}()
	if r.objectives != nil {
		go r.objectives.Run(ctx)
	}
	go r.follow(ctx)
	go r.refresher.Run(ctx, r.changed)
	if r.direct != nil {
		go r.direct.Run(ctx)
	}
	if r.cert != nil {
		go r.cert.Run(ctx, r.reloadInterval)
	}
	go watchReadiness(ctx, r.health, r.ready, 250*time.Millisecond)
}

// follow turns pool changes into new targets for the view.
func (r *routing) follow(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.source.Updated():
			old := *r.targets.Load()
			r.setTargets(r.source.Endpoints())
			r.router.metrics.forgetGone(old, *r.targets.Load())
			select {
			case r.changed <- struct{}{}:
			default:
			}
		}
	}
}

// ready: the pool is synced and has endpoints. Stale telemetry does not
// make the picker unready: every replica would turn unready together and
// a FailClose gateway would refuse everything, where the health filter's
// degraded mode (rank by in-flight requests) still routes sensibly.
func (r *routing) ready() bool {
	return r.source.Synced() && len(r.refresher.Current().Endpoints) > 0
}

// stop ends the servers. Readiness is already NOT_SERVING (the health
// watcher's context ended); after drain the gateways have seen that, and
// in-flight requests, streamed responses included, get grace to finish.
func (r *routing) stop(drain, grace time.Duration) {
	r.health.Shutdown()
	time.Sleep(drain)
	done := make(chan struct{})
	go func() { r.ext.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(grace):
		r.ext.Stop()
	}
	r.healthSrv.Stop()
}

// closeListeners releases the ports when the picker fails before serving.
func (r *routing) closeListeners() {
	for _, ln := range []net.Listener{r.extLn, r.healthLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}
