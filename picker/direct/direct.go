// Package direct is the picker's fallback for a node whose agent is
// silent: it reads the model servers of the endpoints without a fresh
// report itself, within a bounded budget, until their agent reports again.
//
// The reference endpoint picker scrapes every model server itself and so
// never loses its load signal; headroom reads the servers through the node
// agents, which carry more (GPU health, VRAM, energy) and cost less. When
// an agent is evicted, OOM-killed or mid-rollout, its node's report goes
// stale, and without this fallback the picker could only extrapolate the
// last report. A Scraper finds those endpoints in the current view, reads
// their /metrics with the agent's reader (collector/modelserver: no
// redirects, a bounded body, the line scanner), and offers the readings to
// the view (store.Refresher), which uses one in place of the stale
// report's for as long as it is fresh. GPU readings are not replaced: only
// the agent reads the GPUs.
package direct

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/agent/report"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

// reading is one server's newest reading, offered to the view.
type reading struct {
	ms *telemetryv1.ModelServer
	at time.Time
}

// target is one server being read. Only the round that holds it reads or
// writes its fields.
type target struct {
	url    string
	engine modelserver.Engine
	reader *modelserver.Reader
	// failures counts the reads failed in a row; next is when the target
	// may be read again after one.
	failures int
	next     time.Time
	last     *reading
}

// Scraper reads the servers of the endpoints that have no fresh report.
// It implements store.DirectReadings.
type Scraper struct {
	o       Options
	views   func() *store.View
	client  *http.Client
	metrics *Metrics
	logger  *slog.Logger
	now     func() time.Time

	// targets, by address, and the turn cursor belong to Run.
	targets map[string]*target
	cursor  int

	readings atomic.Pointer[map[string]reading]
	version  atomic.Uint64
}

// New returns a scraper over the views' endpoints; metrics may be nil.
func New(o Options, views func() *store.View, metrics *Metrics, logger *slog.Logger) *Scraper {
	var tlsConfig *tls.Config
	if o.Scheme == "https" {
		// #nosec G402 -- as the reference picker: model servers serve
		// self-signed certificates; the option says so.
		tlsConfig = &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	s := &Scraper{
		o: o, views: views, client: modelserver.NewClient(o.Timeout, tlsConfig), metrics: metrics, logger: logger,
		now: time.Now, targets: map[string]*target{},
	}
	empty := map[string]reading{}
	s.readings.Store(&empty)
	return s
}

// Reading returns the newest reading of the server at address when it is
// fresh (not older than two rounds and a read), else nil.
func (s *Scraper) Reading(address string) *telemetryv1.ModelServer {
	r, ok := (*s.readings.Load())[address]
	if !ok || s.now().Sub(r.at) > s.o.maxAge() {
		return nil
	}
	return r.ms
}

// Version changes whenever the readings do.
func (s *Scraper) Version() uint64 { return s.version.Load() }

// Run reads in rounds until ctx ends.
func (s *Scraper) Run(ctx context.Context) {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	defer s.client.CloseIdleConnections()
	for {
		s.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round reads, within the budget, the servers of the endpoints that have
// no fresh report, and publishes what it read.
func (s *Scraper) round(ctx context.Context) {
	due := s.due(s.views())
	var wg sync.WaitGroup
	sem := make(chan struct{}, s.o.Concurrency)
	for _, t := range due {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.read(ctx, t)
		}()
	}
	wg.Wait()
	s.publish()
}

// due updates the targets from view (endpoints without a fresh report, or
// read directly already) and returns those to read this round: at most
// MaxEndpoints, taking turns when there are more, and none backing off
// after a failure.
func (s *Scraper) due(v *store.View) []*target {
	now := s.now()
	wanted := make([]string, 0, 8)
	for _, e := range v.Endpoints {
		if !e.Stale && e.Direct == nil {
			continue // the agent reports it
		}
		wanted = append(wanted, e.Address)
		if _, ok := s.targets[e.Address]; !ok {
			s.targets[e.Address] = s.newTarget(e)
		}
	}
	if len(s.targets) > len(wanted) {
		keep := make(map[string]bool, len(wanted))
		for _, a := range wanted {
			keep[a] = true
		}
		for a := range s.targets {
			if !keep[a] {
				delete(s.targets, a) // its agent is back, or it left the pool
			}
		}
	}
	s.metrics.targets.Set(float64(len(wanted)))
	// From the cursor on, the first MaxEndpoints targets not backing off
	// are read, and the next round starts after the last of them; a server
	// backing off after failures takes no one's turn.
	out := make([]*target, 0, min(len(wanted), s.o.MaxEndpoints))
	next, deferred := s.cursor, 0
	for i := range len(wanted) {
		j := (s.cursor + i) % len(wanted)
		t := s.targets[wanted[j]]
		switch {
		case now.Before(t.next):
		case len(out) < s.o.MaxEndpoints:
			out = append(out, t)
			next = j + 1
		default:
			deferred++
		}
	}
	s.metrics.deferred.Add(float64(deferred))
	if len(wanted) > 0 {
		s.cursor = next % len(wanted)
	}
	return out
}

// newTarget derives the metrics URL of e's server: the pod's IP (from the
// pool, never from a report), the configured or the endpoint's own port,
// and the engine the last report named.
func (s *Scraper) newTarget(e *store.Endpoint) *target {
	engine, ok := modelserver.ParseEngine(e.Pod.GetModelServer().GetEngine())
	if !ok {
		engine, _ = modelserver.ParseEngine(s.o.Engine)
	}
	port := s.o.Port
	if port == 0 {
		port = e.Port
	}
	path := s.o.Path
	if path == "" {
		path = engine.DefaultPath()
	}
	u := s.o.Scheme + "://" + net.JoinHostPort(e.IP, strconv.Itoa(port)) + path
	return &target{url: u, engine: engine, reader: modelserver.NewReader(s.client)}
}

// read reads one server; a failure backs the target off (interval × 2^n,
// at most 30 intervals) and lets its last reading age out.
func (s *Scraper) read(ctx context.Context, t *target) {
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	start := s.now()
	stats, err := t.reader.Read(ctx, t.url, t.engine)
	end := s.now()
	s.metrics.seconds.Observe(end.Sub(start).Seconds())
	if err == nil {
		ms := report.ModelServer(&snapshot.ModelServer{Engine: string(t.engine), SampleTime: end, Stats: stats})
		if reason, verr := telemetryv1.ValidateModelServer(ms, uint64(end.UnixNano())); verr != nil {
			s.metrics.reads.WithLabelValues("invalid_" + reason).Inc()
			err = verr
		} else {
			if t.failures > 0 {
				s.logger.Info("reading model server directly again", "url", t.url)
			}
			t.failures, t.last = 0, &reading{ms: ms, at: end}
			s.metrics.reads.WithLabelValues("ok").Inc()
			return
		}
	} else {
		s.metrics.reads.WithLabelValues("error").Inc()
	}
	if t.failures == 0 {
		s.logger.Warn("direct read of a model server without a fresh agent report failed; it stays unknown",
			"url", t.url, "err", err)
	}
	t.failures++
	t.next = end.Add(min(s.o.Interval<<min(t.failures, 5), 30*s.o.Interval))
}

// publish offers the targets' readings to the view.
func (s *Scraper) publish() {
	next := make(map[string]reading, len(s.targets))
	changed := false
	prev := *s.readings.Load()
	for a, t := range s.targets {
		if t.last == nil {
			continue
		}
		next[a] = *t.last
		if p, ok := prev[a]; !ok || p.at != t.last.at {
			changed = true
		}
	}
	if !changed && len(next) == len(prev) {
		return
	}
	s.readings.Store(&next)
	s.version.Add(1)
}
