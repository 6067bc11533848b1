// Package agent is headroom-agent: it samples the node's sources (the
// collector table it is given) on its own clock into immutable snapshots,
// serves the latest one as a Prometheus target and streams it to the
// pickers as node reports. It knows no collector by name but nvml's, whose
// GPUs a caller may replace, and links no simulator: the command and the
// demo choose the GPUs.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/headroom-dev/headroom/agent/exporter"
	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/internal/version"
	"github.com/headroom-dev/headroom/snapshot"
)

// shutdownGrace bounds how long in-flight scrapes may finish on shutdown.
const shutdownGrace = 5 * time.Second

// Agent is one running headroom-agent.
type Agent struct {
	opts     Options
	logger   *slog.Logger
	runner   *collector.Runner
	sampler  *Sampler
	metrics  *metricsHandler
	listener net.Listener
	// streamer and publisher send reports to the pickers; nil when
	// streaming is off.
	streamer  *stream.Streamer
	publisher *publisher
	// stopSources ends the sources' background work (refresh loops,
	// scrape clocks, event watchers).
	stopSources context.CancelFunc
}

// New validates opts, builds every enabled source and binds the listener.
// Background work of the sources lives until ctx ends.
func New(ctx context.Context, opts Options, logger *slog.Logger) (*Agent, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	for _, d := range opts.Host.Deprecated() {
		logger.Warn("a deprecated flag was given; it will be removed in the next release", "flag", "--"+d[0], "use", "--"+d[1])
	}
	bctx, stop := context.WithCancel(ctx)
	sources := opts.Collectors.Build(opts.Enabled(), collector.Env{Ctx: bctx, Logger: logger, Node: opts.NodeName, Host: opts.Host})
	// Building the sources leaves garbage the agent never makes again
	// (the eBPF loader decodes the kernel's BTF, megabytes of it): hand
	// it back to the OS now rather than carry it as RSS until the
	// scavenger gets to it.
	debug.FreeOSMemory()
	runner := collector.NewRunner(sources, opts.CollectorDeadline(), logger)
	sampler := NewSampler(runner, opts.NodeName, opts.Interval)
	a := &Agent{opts: opts, logger: logger, runner: runner, sampler: sampler, stopSources: stop}
	reg := runtimeRegistry()
	var err error
	if opts.Stream.Enabled() {
		if a.streamer, err = stream.New(opts.Stream, logger.With("component", "stream")); err != nil {
			stop()
			_ = runner.Close()
			return nil, err
		}
		reg.MustRegister(a.streamer.Metrics())
		a.publisher = newPublisher(sampler.Latest, sources, a.streamer, opts.Interval)
	}
	if a.listener, err = net.Listen("tcp", opts.ListenAddress); err != nil {
		stop()
		_ = runner.Close()
		return nil, fmt.Errorf("listen on %s: %w", opts.ListenAddress, err)
	}
	a.metrics = newMetricsHandler(sampler.Latest, opts.Interval, logger, exporter.New(sampler.Latest), reg)
	sampler.onPublish = func() {
		if a.publisher != nil {
			a.publisher.notify()
		}
		a.metrics.Prewarm()
	}
	return a, nil
}

// Addr is the address /metrics is served on.
func (a *Agent) Addr() net.Addr { return a.listener.Addr() }

// Latest returns the newest snapshot.
func (a *Agent) Latest() *snapshot.Snapshot { return a.sampler.Latest() }

// Sampler exposes the sampling loop (tests step it by hand).
func (a *Agent) Sampler() *Sampler { return a.sampler }

// Run samples and serves until ctx ends, then shuts down gracefully: the
// server drains in-flight scrapes, the sources release NVML.
func (a *Agent) Run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(a.listener) }()
	if a.opts.DebugAddress != "" {
		go a.serveDebug(ctx, a.opts.DebugAddress)
	}
	sampleDone, streamDone := make(chan struct{}), make(chan struct{})
	go func() { a.sampler.Run(ctx); close(sampleDone) }()
	if a.streamer != nil {
		go a.publisher.run(ctx)
		go func() { a.streamer.Run(ctx); close(streamDone) }()
	} else {
		close(streamDone)
	}
	// The GPU backend is the command's: it logs simulated GPUs itself.
	a.logger.Info("agent started", append([]any{"node", a.opts.NodeName, "listen", a.Addr().String(),
		"interval", a.opts.Interval, "collectors", a.opts.Enabled()}, version.Get().LogAttrs()...)...)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	}
	a.logger.Info("agent stopping")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("shutdown: %w", serr))
	}
	a.stopSources()
	<-sampleDone
	<-streamDone
	if cerr := a.runner.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}
