package extproc

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// phase is where a stream stands. Each ProcessingRequest is legal in one
// phase only; anything else is a protocol error.
type phase uint8

const (
	// awaitingRequestHeaders: nothing received yet.
	awaitingRequestHeaders phase = iota
	// bufferingRequestBody: headers received, body chunks are collected
	// until end_of_stream (or request trailers); nothing is answered yet.
	bufferingRequestBody
	// awaitingResponseHeaders: the decision and the body have been sent.
	awaitingResponseHeaders
	// streamingResponseBody: response body chunks are echoed and metered.
	streamingResponseBody
	// done: the response ended; only Envoy closing the stream is expected.
	done
)

var phaseNames = [...]string{"awaiting request headers", "buffering request body", "awaiting response headers", "streaming response body", "done"}

func (p phase) String() string { return phaseNames[p] }

// metricName is the phase as a label value.
func (p phase) metricName() string { return strings.ReplaceAll(phaseNames[p], " ", "_") }

var (
	// errProtocol is a message Envoy would not send in the stream's phase.
	errProtocol = errors.New("ext_proc protocol error")
	// errStreamClosed is Envoy closing the stream before the response
	// ended (the client left, or the gateway gave up).
	errStreamClosed = errors.New("stream closed before the response ended")
	// errPickExpired: no response headers within ResponseTimeout.
	errPickExpired = errors.New("no response headers in time: pick released")
	// errResponseIdle: the response body stalled past ResponseIdleTimeout.
	errResponseIdle = errors.New("response body stalled: pick released")
)

// rejection is a request answered with an ImmediateResponse.
type rejection struct {
	status int
	msg    string // short, public: it goes into the response body
	err    error
	// retryAfter is the Retry-After seconds of a 429 for a passing
	// overload; 0 for none.
	retryAfter int
}

func (r *rejection) Error() string { return fmt.Sprintf("%d %s: %v", r.status, r.msg, r.err) }
func (r *rejection) Unwrap() error { return r.err }

func reject(status int, msg string, err error) error {
	return &rejection{status: status, msg: msg, err: err}
}

// stream is the state of one ext_proc stream (one HTTP request).
type stream struct {
	srv   *Server
	gs    extprocv3.ExternalProcessor_ProcessServer
	log   *slog.Logger
	state phase

	req           Request
	requestID     string           // x-request-id, for logs
	headerMeta    *corev3.Metadata // the request headers' metadata_context
	modelHeader   bool             // x-gateway-model-name was set
	contentLength int              // from the request headers; -1 when absent
	// body holds the request body until it is sent on; headers counts the
	// request headers' bytes against the budget until then.
	body    chunks
	headers buffer

	routed    bool
	reported  bool // Done was called
	endpoints []string
	// picked is the first endpoint the Decider returned, before the subset
	// filter: the one Done must name.
	picked string
	// bodyBytes is the length of the request body sent on (the body
	// itself is released once sent).
	bodyBytes int
	served    string
	decidedAt time.Time
	meter     responseMeter
}

func newStream(s *Server, gs extprocv3.ExternalProcessor_ProcessServer) *stream {
	st := &stream{srv: s, gs: gs, log: s.log, contentLength: -1}
	st.body.budget, st.headers.budget, st.meter.budget = &s.budget, &s.budget, &s.budget
	return st
}

// send is the one place responses leave: in order, stopping at the first
// error.
func (st *stream) send(out ...*extprocv3.ProcessingResponse) error {
	for _, r := range out {
		if err := st.gs.Send(r); err != nil {
			return err
		}
	}
	return nil
}

// sent runs after a message's responses went out: once the request has
// been sent on, its body and headers are no longer held (a streamed
// response may keep the stream open for minutes).
func (st *stream) sent() {
	if st.state >= awaitingResponseHeaders && st.req.Headers != nil {
		st.body.release()
		st.headers.release()
		st.req.Body, st.req.Headers = nil, nil
	}
}

// release gives back everything the stream holds; it runs when the
// stream ends, however it ends.
func (st *stream) release() {
	st.body.release()
	st.headers.release()
	st.meter.release()
}

// handle dispatches one message to its phase's handler and returns the
// responses to send, in order.
func (st *stream) handle(req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return st.onRequestHeaders(req, r.RequestHeaders)
	case *extprocv3.ProcessingRequest_RequestBody:
		return st.onRequestBody(req, r.RequestBody)
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return st.onRequestTrailers(req)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return st.onResponseHeaders(req, r.ResponseHeaders)
	case *extprocv3.ProcessingRequest_ResponseBody:
		return st.onResponseBody(r.ResponseBody)
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return st.onResponseTrailers()
	}
	// Flow-control-only messages and fields this server does not know.
	return nil, nil
}

// outOfOrder is a message that does not fit the phase: 400 while the
// request is undecided, a gRPC error once it has been routed.
func (st *stream) outOfOrder(what string) error {
	err := fmt.Errorf("%w: %s while %s", errProtocol, what, st.state)
	if !st.routed {
		return reject(400, "malformed request stream", fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	return err
}

// refuseBuffer maps a buffer error to its answer: 413 past the body
// limit, 429 (retry in a second) when the budget is spent.
func (st *stream) refuseBuffer(err error, what string) error {
	if errors.Is(err, errTooLarge) {
		st.srv.counters.refuse(RefusedTooLarge)
		return reject(413, what+" too large", fmt.Errorf("%w: %w (%d bytes at most)", ErrBadRequest, err, st.srv.opts.MaxBodyBytes))
	}
	st.srv.counters.refuse(RefusedBuffer)
	return &rejection{status: 429, msg: "endpoint picker busy: request buffers full, retry", retryAfter: 1,
		err: fmt.Errorf("%s: %w (--extproc.max-buffered-bytes %d)", what, err, st.srv.opts.MaxBufferedBytes)}
}

func (st *stream) onRequestHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != awaitingRequestHeaders {
		return nil, st.outOfOrder("request headers")
	}
	n := st.readHeaders(h.GetHeaders())
	st.headerMeta = req.GetMetadataContext()
	if err := st.headers.reserveOnly(n); err != nil {
		return nil, st.refuseBuffer(err, "request headers")
	}
	if h.GetEndOfStream() {
		return st.decide(req.GetMetadataContext(), false, false)
	}
	if ct := st.req.Headers["content-type"]; ct != "" && !mediaTypeIs(ct, "application/json") {
		return nil, reject(400, "request body must be application/json", fmt.Errorf("%w: content-type %q", ErrBadRequest, ct))
	}
	if st.contentLength > st.srv.opts.MaxBodyBytes {
		return nil, st.refuseBuffer(errTooLarge, "request body")
	}
	st.state = bufferingRequestBody
	return nil, nil
}

// readHeaders fills the request's headers, path, method and model header
// and returns the bytes they take.
func (st *stream) readHeaders(hm *corev3.HeaderMap) int {
	hs := hm.GetHeaders()
	st.req.Headers = make(map[string]string, len(hs))
	size := 0
	for _, h := range hs {
		k := strings.ToLower(h.GetKey())
		v := h.GetValue()
		if raw := h.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		size += len(k) + len(v)
		if old, ok := st.req.Headers[k]; ok {
			v = old + "," + v
		}
		st.req.Headers[k] = v
	}
	st.req.Path, st.req.Method = st.req.Headers[":path"], st.req.Headers[":method"]
	st.requestID = st.req.Headers["x-request-id"]
	if m := st.req.Headers[headerModel]; m != "" {
		st.req.Model, st.modelHeader = m, true
	}
	if cl, err := strconv.Atoi(st.req.Headers["content-length"]); err == nil && cl >= 0 {
		st.contentLength = cl
	}
	return size
}

func (st *stream) onRequestBody(req *extprocv3.ProcessingRequest, b *extprocv3.HttpBody) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != bufferingRequestBody {
		return nil, st.outOfOrder("request body")
	}
	if err := st.body.add(b.GetBody(), st.srv.opts.MaxBodyBytes); err != nil {
		return nil, st.refuseBuffer(err, "request body")
	}
	if !b.GetEndOfStream() {
		return nil, nil
	}
	return st.decideBody(req, false)
}

func (st *stream) onRequestTrailers(req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != bufferingRequestBody {
		return nil, st.outOfOrder("request trailers")
	}
	return st.decideBody(req, true)
}

// decideBody joins the complete body and decides.
func (st *stream) decideBody(req *extprocv3.ProcessingRequest, trailers bool) ([]*extprocv3.ProcessingResponse, error) {
	body, err := st.body.join()
	if err != nil {
		return nil, st.refuseBuffer(err, "request body")
	}
	st.req.Body = body
	return st.decide(req.GetMetadataContext(), true, trailers)
}

func (st *stream) since() time.Duration { return st.srv.now().Sub(st.decidedAt) }
