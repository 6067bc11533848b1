package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
)

// HeaderUpstream is the response header naming the endpoint (ip:port)
// that served the request.
const HeaderUpstream = "X-Gateway-Upstream"

var (
	errTooLarge      = errors.New("request body too large")
	errNoDestination = errors.New("no destination endpoint")
	errAllFailed     = errors.New("every endpoint failed")
)

// outbound is the request as it goes upstream: the client's, as the picker
// left it.
type outbound struct {
	method, path, host string // path is the request URI: path?query
	header             http.Header
	body               []byte
}

// newOutbound copies the client's request line and end-to-end headers and
// adds an x-request-id when there is none, as Envoy does.
func newOutbound(r *http.Request, body []byte) *outbound {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	removeHopHeaders(h)
	h.Del("Content-Length") // the body's length is sent
	if h.Get("X-Request-Id") == "" {
		h.Set("X-Request-Id", strconv.FormatUint(rand.Uint64(), 16))
	}
	path := r.RequestURI
	if !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI()
	}
	return &outbound{method: r.Method, path: path, host: r.Host, header: h, body: body}
}

// clone copies what a picker may change.
func (o *outbound) clone() *outbound {
	c := *o
	c.header = o.header.Clone()
	return &c
}

// readBody reads the whole request body, up to limit bytes.
func readBody(r *http.Request, limit int) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > int64(limit) {
		return nil, errTooLarge
	}
	if r.ContentLength >= 0 {
		b := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, b); err != nil {
			return nil, fmt.Errorf("read request body: %w", err)
		}
		return b, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if len(b) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

// upstream is an endpoint's response being relayed.
type upstream struct {
	resp     *http.Response
	endpoint string
	ctr      *endpointCounters
}

// close ends the response and its in-flight count.
func (u *upstream) close() {
	_ = u.resp.Body.Close()
	u.ctr.inFlight.Add(-1)
}

// forward sends the request to eps in order and returns the first
// response; an endpoint that fails before any response byte (refused,
// reset, unreachable) is skipped for the next.
func (g *Gateway) forward(c *call, o *outbound, eps []string) (*upstream, error) {
	var last error
	for i, ep := range eps {
		if i > 0 {
			g.retried.Add(1)
		}
		req, err := http.NewRequestWithContext(c.ctx, o.method, "http://"+ep+o.path, bytes.NewReader(o.body))
		if err != nil {
			last = fmt.Errorf("%s: %w", ep, err)
			continue
		}
		req.Header, req.Host = o.header, o.host
		ctr := g.counters(ep)
		ctr.inFlight.Add(1)
		resp, err := g.transport.RoundTrip(req)
		if err == nil {
			ctr.routed.Add(1)
			// Tell the client which endpoint served (any server, not only
			// those that name themselves).
			resp.Header.Set(HeaderUpstream, ep)
			return &upstream{resp: resp, endpoint: ep, ctr: ctr}, nil
		}
		ctr.inFlight.Add(-1)
		last = fmt.Errorf("%s: %w", ep, err)
		if c.ctx.Err() != nil {
			return nil, fmt.Errorf("forward: %w", context.Cause(c.ctx))
		}
		g.log.Debug("endpoint failed", "request_id", o.header.Get("X-Request-Id"), "endpoint", ep, "err", err)
	}
	return nil, fmt.Errorf("%w: %w", errAllFailed, last)
}

// relay writes the upstream response to the client as it arrives.
func (g *Gateway) relay(c *call, up *upstream) {
	copyHeaders(c.w.Header(), up.resp.Header)
	c.w.WriteHeader(up.resp.StatusCode)
	if err := g.copyBody(c.w, up.resp.Body); err != nil {
		g.abort(c, err)
	}
}

// copyBody copies body to w, flushing after every read so that event
// streams reach the client chunk by chunk.
func (g *Gateway) copyBody(w http.ResponseWriter, body io.Reader) error {
	bp := g.bufs.Get().(*[]byte)
	defer g.bufs.Put(bp)
	rc := http.NewResponseController(w)
	for {
		n, err := body.Read(*bp)
		if n > 0 {
			if _, werr := w.Write((*bp)[:n]); werr != nil {
				return fmt.Errorf("write response: %w", werr)
			}
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read upstream body: %w", err)
		}
	}
}

// hopHeaders are the hop-by-hop headers a proxy does not forward.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func isHopHeader(k string) bool {
	for _, h := range hopHeaders {
		if strings.EqualFold(k, h) {
			return true
		}
	}
	return false
}

// removeHopHeaders deletes the hop-by-hop headers and those that
// Connection names.
func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// copyHeaders adds src's end-to-end headers to dst.
func copyHeaders(dst, src http.Header) {
	for k, vs := range src {
		if !isHopHeader(k) {
			dst[k] = append(dst[k], vs...)
		}
	}
	for _, v := range src["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				dst.Del(f)
			}
		}
	}
}

// errorBody is the JSON of the gateway's own errors, shaped like OpenAI's
// (and the picker's).
type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	var e errorBody
	e.Error.Code, e.Error.Message = code, msg
	b, _ := json.Marshal(e) // two plain fields: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
