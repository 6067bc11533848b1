package agent

import (
	"bytes"
	"compress/gzip"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/headroom-dev/headroom/agent/snapshot"
)

// metricsHandler serves /metrics from bytes rendered once per snapshot.
//
// The first scrape after a new snapshot gathers every family (the
// exporter's and the Go and process collectors'), encodes them in the
// negotiated format, compresses them if asked, and keeps the result; every
// later scrape of the same snapshot writes those bytes. A scrape therefore
// costs a copy, and the runtime families are at most one sample interval old.
type metricsHandler struct {
	latest   func() *snapshot.Snapshot
	gatherer prometheus.Gatherer
	logger   *slog.Logger

	mu     sync.Mutex
	snap   *snapshot.Snapshot
	bodies map[bodyKey][]byte
}

type bodyKey struct {
	format expfmt.Format
	gzip   bool
}

func newMetricsHandler(latest func() *snapshot.Snapshot, g prometheus.Gatherer, logger *slog.Logger) *metricsHandler {
	return &metricsHandler{latest: latest, gatherer: g, logger: logger, bodies: map[bodyKey][]byte{}}
}

func (h *metricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := bodyKey{format: expfmt.NegotiateIncludingOpenMetrics(r.Header), gzip: acceptsGzip(r)}
	body, err := h.body(key)
	if err != nil {
		h.logger.Error("rendering /metrics", "err", err)
		http.Error(w, "rendering metrics failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(key.format))
	w.Header().Set("Vary", "Accept-Encoding")
	if key.gzip {
		w.Header().Set("Content-Encoding", "gzip")
	}
	_, _ = w.Write(body)
}

// body returns the cached rendering of the latest snapshot, rendering it on
// first use.
func (h *metricsHandler) body(key bodyKey) ([]byte, error) {
	s := h.latest()
	h.mu.Lock()
	defer h.mu.Unlock()
	if s != h.snap {
		h.snap = s
		clear(h.bodies)
	}
	if b, ok := h.bodies[key]; ok {
		return b, nil
	}
	b, err := h.render(key)
	if err != nil {
		return nil, err
	}
	// Before the first sample every scrape renders afresh: nothing to key on.
	if s != nil {
		h.bodies[key] = b
	}
	return b, nil
}

func (h *metricsHandler) render(key bodyKey) ([]byte, error) {
	fams, err := h.gatherer.Gather()
	if err != nil && len(fams) == 0 {
		return nil, err
	}
	if err != nil {
		// Some collector misbehaved: serve the rest, as promhttp's
		// ContinueOnError does.
		h.logger.Warn("gathering metrics", "err", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, key.format)
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			return nil, err
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			return nil, err
		}
	}
	if !key.gzip {
		return buf.Bytes(), nil
	}
	var zbuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
	if _, err := zw.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
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
