package agent

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/headroom-dev/headroom/snapshot"
)

// metricsHandler serves /metrics from bytes rendered once per snapshot.
//
// A body is every family (the exporter's, then the Go and process
// collectors') encoded in one negotiated format, compressed if asked. After
// each sample the sampler calls Prewarm, which renders the new snapshot in
// every format whose next scrape is due before the following sample and
// publishes the bodies together. Scrapers are regular (Prometheus scrapes
// each target on a fixed period), so Prewarm learns each format's period
// from its last two scrapes: a scraper as fast as the sampler gets every
// snapshot pre-rendered, a 15 s scraper of a 1 s sampler costs one or two
// renders per 15 s instead of fifteen. A scrape is a copy of bytes; one
// that was not predicted (a new format, a late or early scraper) renders
// the latest snapshot itself. Until Prewarm has run, scrapes get the
// previous snapshot's bodies: served data is at most one sample interval
// (plus one render) old.
type metricsHandler struct {
	latest    func() *snapshot.Snapshot
	gatherers []prometheus.Gatherer
	logger    *slog.Logger
	warmFor   time.Duration
	now       func() time.Time
	// accepted are the formats served, in preference order. Negotiation
	// only ever yields one of these (with one of a fixed set of escaping
	// schemes), so the cache cannot grow with what clients send.
	accepted []expfmt.Format

	cur atomic.Pointer[rendered]

	// interval is the sampling interval, the horizon of Prewarm.
	interval time.Duration

	wantMu sync.Mutex
	wanted map[bodyKey]*scraper

	// renderMu serialises rendering and guards the fields below.
	renderMu sync.Mutex
	lastSize int
	// scratch and zw are reused between gzip renders: the encoded text is
	// only an intermediate there, and a flate compressor is large.
	scratch bytes.Buffer
	zw      *gzip.Writer
}

// rendered is the bodies of one snapshot; never modified once published.
type rendered struct {
	snap   *snapshot.Snapshot
	bodies map[bodyKey][]byte
}

type bodyKey struct {
	format expfmt.Format
	gzip   bool
}

// scraper is what Prewarm knows of the scrapes of one format.
type scraper struct {
	last   time.Time
	period time.Duration // between the last two scrapes; 0 until known
}

// due reports whether a scrape is expected before the sample after now.
func (s *scraper) due(now time.Time, interval time.Duration) bool {
	if s.period <= 0 {
		return false
	}
	if s.period <= 2*interval {
		return true // scraped about as often as sampled: render every sample
	}
	until := s.last.Add(s.period).Sub(now)
	// Half an interval of slack each way absorbs scrape jitter; a scrape
	// overdue by more than an interval was missed, not late.
	return until >= -interval && until <= interval*3/2
}

// defaultWarmFor is how long a format stays pre-rendered after its last
// scrape: longer than any sane scrape interval.
const defaultWarmFor = 5 * time.Minute

// newMetricsHandler serves the families of gatherers, whose family names
// must not overlap, in order. The caller must call Prewarm after publishing
// each snapshot.
func newMetricsHandler(latest func() *snapshot.Snapshot, interval time.Duration, logger *slog.Logger, gatherers ...prometheus.Gatherer) *metricsHandler {
	return &metricsHandler{
		latest: latest, gatherers: gatherers, logger: logger, warmFor: defaultWarmFor, now: time.Now,
		accepted: expfmt.DefaultOpenMetricsAcceptedFormats(), interval: interval, wanted: map[bodyKey]*scraper{},
	}
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := bodyKey{format: expfmt.NegotiateAccept(r.Header, h.accepted...), gzip: acceptsGzip(r)}
	body, err := h.body(key)
	if err != nil {
		h.logger.Error("rendering /metrics", "err", err)
		http.Error(w, "rendering metrics failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(key.format))
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Vary", "Accept-Encoding")
	if key.gzip {
		w.Header().Set("Content-Encoding", "gzip")
	}
	_, _ = w.Write(body)
}

// body returns the published rendering of key, or renders one now for a
// format no recent scrape asked for.
func (h *metricsHandler) body(key bodyKey) ([]byte, error) {
	h.scraped(key)
	if r := h.cur.Load(); r != nil {
		if b, ok := r.bodies[key]; ok {
			return b, nil
		}
	}
	h.renderMu.Lock()
	defer h.renderMu.Unlock()
	r := h.cur.Load()
	if r != nil {
		if b, ok := r.bodies[key]; ok { // rendered while we waited
			return b, nil
		}
	}
	s := h.latest()
	b, err := h.render(key)
	if err != nil || s == nil {
		return b, err // before the first sample there is nothing to keep
	}
	next := &rendered{snap: s, bodies: map[bodyKey][]byte{key: b}}
	if r != nil && r.snap == s {
		next.bodies = maps.Clone(r.bodies)
		next.bodies[key] = b
	}
	h.cur.Store(next)
	return b, nil
}

// scraped records a scrape of key and learns its period.
func (h *metricsHandler) scraped(key bodyKey) {
	now := h.now()
	h.wantMu.Lock()
	defer h.wantMu.Unlock()
	s := h.wanted[key]
	if s == nil {
		h.wanted[key] = &scraper{last: now}
		return
	}
	if d := now.Sub(s.last); d > 0 {
		s.period = d
	}
	s.last = now
}

// Prewarm renders the latest snapshot in every format due to be scraped
// before the next sample and publishes them together.
func (h *metricsHandler) Prewarm() {
	h.wantMu.Lock()
	now := h.now()
	var keys []bodyKey
	for key, s := range h.wanted {
		switch {
		case now.Sub(s.last) > h.warmFor:
			delete(h.wanted, key)
		case s.due(now, h.interval):
			keys = append(keys, key)
		}
	}
	h.wantMu.Unlock()

	h.renderMu.Lock()
	defer h.renderMu.Unlock()
	s := h.latest()
	if s == nil {
		return
	}
	next := &rendered{snap: s, bodies: make(map[bodyKey][]byte, len(keys))}
	for _, key := range keys {
		b, err := h.render(key)
		if err != nil {
			h.logger.Warn("pre-rendering /metrics", "err", err)
			continue
		}
		next.bodies[key] = b
	}
	h.cur.Store(next)
}

// render encodes every family in key's format; h.renderMu must be held.
func (h *metricsHandler) render(key bodyKey) ([]byte, error) {
	buf := &bytes.Buffer{}
	if key.gzip {
		buf = &h.scratch
		buf.Reset()
	}
	buf.Grow(h.lastSize + h.lastSize/8)
	enc := expfmt.NewEncoder(buf, key.format)
	for _, g := range h.gatherers {
		fams, err := g.Gather()
		if err != nil {
			// Serve what was gathered, as promhttp's ContinueOnError does.
			h.logger.Warn("gathering metrics", "err", err)
		}
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				return nil, err
			}
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	h.lastSize = max(h.lastSize, buf.Len())
	if !key.gzip {
		return buf.Bytes(), nil
	}
	var zbuf bytes.Buffer
	zbuf.Grow(buf.Len() / 8)
	if h.zw == nil {
		h.zw, _ = gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
	} else {
		h.zw.Reset(&zbuf)
	}
	if _, err := h.zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := h.zw.Close(); err != nil {
		return nil, err
	}
	return zbuf.Bytes(), nil
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
