package modelserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/headroom-dev/headroom/snapshot"
)

// NewClient returns the HTTP client metrics are read with: no proxy (pod
// IPs), no redirects followed, no compression, and a dial timeout of
// timeout. tlsConfig is used for https URLs (nil: Go's defaults).
func NewClient(timeout time.Duration, tlsConfig *tls.Config) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // pod IPs: never through a proxy
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     tlsConfig,
		// Node-local traffic: compressing costs both ends CPU for nothing.
		DisableCompression: true,
	}
	return &http.Client{
		Transport: tr,
		// A pod may answer with a redirect to any URL its reader can reach
		// (the API server, a cloud metadata endpoint, another tenant's
		// pod): only the address the reader derived itself is read.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Reader fetches one server's metrics and parses them, keeping its buffer
// and parser between reads. It must not be used concurrently: a reader
// belongs to one target, with at most one read in flight.
type Reader struct {
	client *http.Client
	parser *parser
	buf    bytes.Buffer
}

// NewReader returns a reader that fetches with client (see NewClient).
func NewReader(client *http.Client) *Reader {
	return &Reader{client: client, parser: newParser()}
}

// Read GETs url and extracts engine e's stats. The body is bounded by
// MaxBodyBytes and a redirect is an error; impossible values are left out
// of the stats (counted, by reason, in the parser's drop counts).
func (r *Reader) Read(ctx context.Context, url string, e Engine) (snapshot.ModelServerStats, error) {
	var none snapshot.ModelServerStats
	r.parser.dropped = dropCounts{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return none, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Accept", acceptHeader)
	resp, err := r.client.Do(req)
	if err != nil {
		return none, fmt.Errorf("get: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if loc := resp.Header.Get("Location"); loc != "" {
			// The URL is not logged with the Location: it is the pod's to
			// choose, and may hold anything.
			return none, fmt.Errorf("get: status %s: redirects are not followed", resp.Status)
		}
		return none, fmt.Errorf("get: status %s", resp.Status)
	}
	if resp.ContentLength > MaxBodyBytes {
		return none, ErrBodyTooLarge
	}
	r.buf.Reset()
	if _, err := r.buf.ReadFrom(io.LimitReader(resp.Body, MaxBodyBytes+1)); err != nil {
		return none, fmt.Errorf("read body: %w", err)
	}
	defer r.shrink()
	if r.buf.Len() > MaxBodyBytes {
		return none, ErrBodyTooLarge
	}
	return r.parser.parse(e, r.buf.Bytes(), resp.Header.Get("Content-Type"))
}

// shrink lets go of a buffer grown by an unusually large body.
func (r *Reader) shrink() {
	if r.buf.Cap() > 1<<20 {
		r.buf = bytes.Buffer{}
	}
}
