// Package gateway is a small HTTP gateway that plays Envoy's part in front
// of a pool of OpenAI-compatible model servers. No Envoy binary runs here,
// so the headroom demo and the routing benchmark put this stand-in for
// Envoy + ext_proc between their load and the simulated model servers.
//
// In ext_proc mode (Options.Policy nil) it consults headroom-picker exactly
// as Envoy with the Gateway API Inference Extension endpoint picker does,
// message by message over envoy.service.ext_proc.v3 (over TLS it does not
// verify, as gateways do, or plaintext to a picker on loopback that
// allows it): one stream per
// request; the request headers, then the body in chunks (bodies
// FULL_DUPLEX_STREAMED), each message carrying metadata_context; the
// picker's answer applied (header mutations, the body it streams back,
// or an ImmediateResponse); the endpoints of x-gateway-destination-endpoint
// tried in order; then the response headers (with the served endpoint in
// metadata_context envoy.lb) and every response body chunk sent through
// the picker and written to the client as it comes back. Picker replicas
// are used in round-robin order, and one that fails before deciding is
// skipped for the next. When none answers the request gets 503
// (FailClose, GIE's default) or is routed round robin (FailOpen).
//
// In baseline mode (Options.Policy set) the gateway picks itself with the
// load-balancing policies in use today (RoundRobin, Random, Envoy's
// LeastRequest, the reference endpoint picker's queue and KV-cache scorers
// in QueueKV), so a benchmark can compare them with headroom in one run.
//
// It is a stand-in, not a production proxy: HTTP/1.1 to the model servers,
// trailers dropped, and request bodies buffered (bounded) so that they can
// be replayed to a fallback endpoint or another picker replica; responses
// stream and are never buffered.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Defaults of Options.
const (
	DefaultChunkBytes      = 16 << 10
	DefaultUpstreamTimeout = 5 * time.Minute
	DefaultPickerTimeout   = 5 * time.Second
	DefaultMaxBodyBytes    = 10 << 20 // the picker's own limit
)

// Options configures a Gateway.
type Options struct {
	// Endpoints are the ip:port of the model servers (the pool). Baseline
	// mode picks among them; ext_proc mode sends them as the subset hint
	// and routes over them when failing open.
	Endpoints []string
	// Policy is a baseline; nil means ext_proc mode.
	Policy Policy
	// Pickers are the host:port of the picker replicas (ext_proc mode).
	Pickers []string
	// PickerTLS is the TLS the gateway speaks to the pickers; nil is
	// plaintext (pickers run with --extproc.insecure, on loopback). Real
	// gateways use TLS without verifying the picker's certificate:
	// InsecurePickerTLS is that.
	PickerTLS *tls.Config
	// FailOpen routes with round robin when no picker answers, instead of
	// 503 (GIE's failureMode FailOpen); false is FailClose.
	FailOpen bool
	// ChunkBytes is the size of the request body chunks sent to ext_proc
	// (default 16 KiB).
	ChunkBytes int
	// UpstreamTimeout bounds a whole request once its body is read,
	// streaming included (default 5m).
	UpstreamTimeout time.Duration
	// PickerTimeout bounds the picker's decision per replica, like Envoy's
	// ext_proc message_timeout; a replica that takes longer counts as
	// failed (default 5s).
	PickerTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted (413 above;
	// default 10 MiB).
	MaxBodyBytes int
	// NoSubsetHint leaves out the subset hint (filter_metadata
	// envoy.lb.subset_hint, the Endpoints) that a GIE gateway sends the
	// picker with every request message.
	NoSubsetHint bool
	Logger       *slog.Logger
}

// Stats are the gateway's counters since New.
type Stats struct {
	// Requests counts proxied requests (not /healthz).
	Requests uint64
	// Failed counts requests the gateway answered with an error of its own
	// or cut short: body too large, no picker answered (FailClose), no
	// endpoint reachable, upstream timeout, a response broken mid-way.
	// Requests whose client left are not counted.
	Failed uint64
	// Rejected counts the picker's ImmediateResponses passed on.
	Rejected uint64
	// Retried counts moves to the next endpoint of a fallback list.
	Retried uint64
	// PickerErrors counts picker replicas that failed before deciding.
	PickerErrors uint64
	// FailedOpen counts requests routed round robin because no picker
	// answered (FailOpen).
	FailedOpen uint64
	// Decisions counts the picker's answers (routes and immediate
	// responses) and DecisionTime sums the time each took, from the
	// first request message sent to the answer: the picker's share of a
	// request's latency before the upstream sees it.
	Decisions    uint64
	DecisionTime time.Duration
	// PickTimes are the picks as a gateway sees them: request headers
	// sent to the destination received (the answer to the headers), TLS
	// included; the body's round trip through the picker is not.
	PickTimes   PickTimes
	PerEndpoint map[string]EndpointStats // by ip:port
}

// EndpointStats are one endpoint's counters.
type EndpointStats struct {
	// Routed counts responses the endpoint returned.
	Routed uint64
	// InFlight is the requests sent to it whose response has not ended.
	InFlight int64
}

// Gateway is the HTTP gateway.
type Gateway struct {
	opts      Options
	log       *slog.Logger
	transport *http.Transport
	pickers   []*pickerConn
	next      atomic.Uint64 // the next picker replica
	failOpen  Policy
	reqMeta   *corev3.Metadata // the subset hint; nil when none
	protocol  *extprocv3.ProtocolConfiguration
	bufs      sync.Pool

	requests, failed, rejected, retried, pickerErrors, failedOpen atomic.Uint64
	decisions, decisionNanos                                      atomic.Uint64
	pickTimes                                                     pickHist

	mu        sync.RWMutex
	endpoints map[string]*endpointCounters
}

type pickerConn struct {
	addr   string
	conn   *grpc.ClientConn
	client extprocv3.ExternalProcessorClient
}

type endpointCounters struct {
	routed   atomic.Uint64
	inFlight atomic.Int64
}

// New returns a gateway; it connects to the pickers lazily.
func New(o Options) (*Gateway, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("gateway options: %w", err)
	}
	g := &Gateway{
		opts: o, log: o.Logger.With("component", "gateway"), failOpen: RoundRobin(),
		transport: newTransport(), endpoints: make(map[string]*endpointCounters, len(o.Endpoints)),
		protocol: &extprocv3.ProtocolConfiguration{
			RequestBodyMode:  filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
			ResponseBodyMode: filterv3.ProcessingMode_FULL_DUPLEX_STREAMED,
		},
	}
	g.bufs.New = func() any { b := make([]byte, 32<<10); return &b }
	for _, ep := range o.Endpoints {
		g.endpoints[ep] = &endpointCounters{}
	}
	if o.Policy == nil && !o.NoSubsetHint && len(o.Endpoints) > 0 {
		g.reqMeta = subsetHint(o.Endpoints)
	}
	for _, addr := range o.Pickers {
		if o.Policy != nil {
			break // a baseline asks no picker
		}
		creds := insecure.NewCredentials()
		if o.PickerTLS != nil {
			creds = credentials.NewTLS(o.PickerTLS)
		}
		conn, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(creds),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}))
		if err != nil {
			_ = g.Close()
			return nil, fmt.Errorf("picker %s: %w", addr, err)
		}
		g.pickers = append(g.pickers, &pickerConn{addr: addr, conn: conn, client: extprocv3.NewExternalProcessorClient(conn)})
	}
	return g, nil
}

// InsecurePickerTLS is what GIE gateways speak to an endpoint picker by
// default: TLS that does not verify the picker's (usually self-signed)
// certificate, as Istio's DestinationRule with insecureSkipVerify and
// Envoy Gateway's and kgateway's empty validation context do, capped at
// TLS 1.2 as Envoy's upstream TLS is by default.
func InsecurePickerTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}
}

func (o *Options) setDefaults() {
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if o.PickerTimeout <= 0 {
		o.PickerTimeout = DefaultPickerTimeout
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Endpoints, o.Pickers = slices.Clone(o.Endpoints), slices.Clone(o.Pickers)
}

func (o *Options) validate() error {
	var errs []error
	switch {
	case o.Policy != nil && len(o.Endpoints) == 0:
		errs = append(errs, errors.New("a baseline policy needs endpoints"))
	case o.Policy == nil && len(o.Pickers) == 0:
		errs = append(errs, errors.New("ext_proc mode needs at least one picker"))
	case o.Policy == nil && o.FailOpen && len(o.Endpoints) == 0:
		errs = append(errs, errors.New("FailOpen needs endpoints to route to"))
	}
	for _, a := range append(slices.Clone(o.Endpoints), o.Pickers...) {
		if !validHostPort(a) {
			errs = append(errs, fmt.Errorf("address %q: want host:port", a))
		}
	}
	if o.ChunkBytes > 4<<20 {
		errs = append(errs, fmt.Errorf("chunk size %d over 4 MiB (gRPC's default message limit)", o.ChunkBytes))
	}
	return errors.Join(errs...)
}

func validHostPort(a string) bool {
	h, p, err := net.SplitHostPort(a)
	if err != nil || h == "" {
		return false
	}
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 65536
}

func newTransport() *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // pass bodies through as they are
	}
}

// Handler serves GET /healthz and proxies every other request (POST
// /v1/completions and /v1/chat/completions above all) to the chosen
// endpoint.
func (g *Gateway) Handler() http.Handler { return http.HandlerFunc(g.serveHTTP) }

// Close closes the picker connections and idle upstream connections.
func (g *Gateway) Close() error {
	var errs []error
	for _, p := range g.pickers {
		errs = append(errs, p.conn.Close())
	}
	g.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

// Stats returns the counters.
func (g *Gateway) Stats() Stats {
	s := Stats{
		Requests: g.requests.Load(), Failed: g.failed.Load(), Rejected: g.rejected.Load(), Retried: g.retried.Load(),
		PickerErrors: g.pickerErrors.Load(), FailedOpen: g.failedOpen.Load(),
		Decisions: g.decisions.Load(), DecisionTime: time.Duration(g.decisionNanos.Load()),
		PickTimes: g.pickTimes.snapshot(),
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	s.PerEndpoint = make(map[string]EndpointStats, len(g.endpoints))
	for ep, c := range g.endpoints {
		s.PerEndpoint[ep] = EndpointStats{Routed: c.routed.Load(), InFlight: c.inFlight.Load()}
	}
	return s
}

// counters returns an endpoint's counters, adding them for an endpoint
// outside the pool (a picker may name any).
func (g *Gateway) counters(ep string) *endpointCounters {
	g.mu.RLock()
	c := g.endpoints[ep]
	g.mu.RUnlock()
	if c != nil {
		return c
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c = g.endpoints[ep]; c == nil {
		c = &endpointCounters{}
		g.endpoints[ep] = c
	}
	return c
}

// call is one proxied request.
type call struct {
	ctx    context.Context // the client's context, bounded by UpstreamTimeout
	cancel context.CancelFunc
	client context.Context // the client's context alone
	w      http.ResponseWriter
	out    *outbound
}

// clientGone is true once the client left.
func (c *call) clientGone() bool { return c.client.Err() != nil }

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	g.requests.Add(1)
	body, err := readBody(r, g.opts.MaxBodyBytes)
	if err != nil {
		if r.Context().Err() == nil {
			g.failed.Add(1)
			code := http.StatusBadRequest
			if errors.Is(err, errTooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			writeError(w, code, err.Error())
		}
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.opts.UpstreamTimeout)
	defer cancel()
	c := &call{ctx: ctx, cancel: cancel, client: r.Context(), w: w, out: newOutbound(r, body)}
	if g.opts.Policy != nil {
		g.serveWithPolicy(c, g.opts.Policy)
		return
	}
	g.serveExtProc(c)
}

// serveWithPolicy routes with a baseline policy (or the fail-open round
// robin) and relays the response.
func (g *Gateway) serveWithPolicy(c *call, p Policy) {
	eps := p.Pick(g.opts.Endpoints)
	if len(eps) == 0 {
		g.fail(c, http.StatusServiceUnavailable, "no endpoint", errNoDestination)
		return
	}
	defer p.Done(eps[0])
	up, err := g.forward(c, c.out, eps)
	if err != nil {
		g.upstreamFailed(c, err)
		return
	}
	defer up.close()
	g.relay(c, up)
}

// fail answers with an error of the gateway's own.
func (g *Gateway) fail(c *call, code int, msg string, err error) {
	if c.clientGone() {
		return
	}
	g.failed.Add(1)
	g.log.Debug("request failed", "request_id", c.out.header.Get("X-Request-Id"), "status", code, "err", err)
	writeError(c.w, code, msg)
}

// upstreamFailed answers a request no endpoint of its list served.
func (g *Gateway) upstreamFailed(c *call, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		g.fail(c, http.StatusGatewayTimeout, "upstream timeout", err)
		return
	}
	g.fail(c, http.StatusServiceUnavailable, "no endpoint reachable", err)
}

// abort cuts a response that broke after its headers went out, so the
// client sees a truncated response rather than a complete one.
func (g *Gateway) abort(c *call, err error) {
	if c.clientGone() {
		return
	}
	g.failed.Add(1)
	g.log.Debug("response aborted", "request_id", c.out.header.Get("X-Request-Id"), "err", err)
	panic(http.ErrAbortHandler)
}
