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

var (
	// errProtocol is a message Envoy would not send in the stream's phase.
	errProtocol = errors.New("ext_proc protocol error")
	// errStreamClosed is Envoy closing the stream before the response
	// ended (the client left, or the gateway gave up).
	errStreamClosed = errors.New("stream closed before the response ended")
)

// rejection is a request answered with an ImmediateResponse.
type rejection struct {
	status int
	msg    string // short, public: it goes into the response body
	err    error
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
	headerMeta    *corev3.Metadata // the request headers' metadata_context
	modelHeader   bool             // x-gateway-model-name was set
	contentLength int              // from the request headers; -1 when absent

	routed    bool
	reported  bool // Done was called
	endpoints []string
	// picked is the first endpoint the Decider returned, before the subset
	// filter: the one Done must name.
	picked    string
	served    string
	decidedAt time.Time
	meter     responseMeter
}

func newStream(s *Server, gs extprocv3.ExternalProcessor_ProcessServer) *stream {
	return &stream{srv: s, gs: gs, log: s.log, contentLength: -1}
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

func (st *stream) onRequestHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != awaitingRequestHeaders {
		return nil, st.outOfOrder("request headers")
	}
	st.readHeaders(h.GetHeaders())
	st.headerMeta = req.GetMetadataContext()
	if h.GetEndOfStream() {
		return st.decide(req.GetMetadataContext(), false, false)
	}
	if ct := st.req.Headers["content-type"]; ct != "" && !mediaTypeIs(ct, "application/json") {
		return nil, reject(400, "request body must be application/json", fmt.Errorf("%w: content-type %q", ErrBadRequest, ct))
	}
	if st.contentLength > st.srv.opts.MaxBodyBytes {
		return nil, reject(400, "request body too large", fmt.Errorf("%w: content-length %d over %d", ErrBadRequest, st.contentLength, st.srv.opts.MaxBodyBytes))
	}
	st.state = bufferingRequestBody
	return nil, nil
}

// readHeaders fills the request's headers, path, method and model header.
func (st *stream) readHeaders(hm *corev3.HeaderMap) {
	hs := hm.GetHeaders()
	st.req.Headers = make(map[string]string, len(hs))
	for _, h := range hs {
		k := strings.ToLower(h.GetKey())
		v := h.GetValue()
		if raw := h.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		if old, ok := st.req.Headers[k]; ok {
			v = old + "," + v
		}
		st.req.Headers[k] = v
	}
	st.req.Path, st.req.Method = st.req.Headers[":path"], st.req.Headers[":method"]
	if m := st.req.Headers[headerModel]; m != "" {
		st.req.Model, st.modelHeader = m, true
	}
	if cl, err := strconv.Atoi(st.req.Headers["content-length"]); err == nil && cl >= 0 {
		st.contentLength = cl
	}
}

func (st *stream) onRequestBody(req *extprocv3.ProcessingRequest, b *extprocv3.HttpBody) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != bufferingRequestBody {
		return nil, st.outOfOrder("request body")
	}
	chunk, limit := b.GetBody(), st.srv.opts.MaxBodyBytes
	if len(st.req.Body)+len(chunk) > limit {
		return nil, reject(400, "request body too large", fmt.Errorf("%w: body over %d bytes", ErrBadRequest, limit))
	}
	switch {
	case st.req.Body == nil && b.GetEndOfStream():
		st.req.Body = chunk // the whole body in one message: no copy
	case st.req.Body == nil && st.contentLength > 0:
		st.req.Body = append(make([]byte, 0, min(max(st.contentLength, len(chunk)), limit)), chunk...)
	default:
		st.req.Body = append(st.req.Body, chunk...)
	}
	if !b.GetEndOfStream() {
		return nil, nil
	}
	return st.decide(req.GetMetadataContext(), true, false)
}

func (st *stream) onRequestTrailers(req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != bufferingRequestBody {
		return nil, st.outOfOrder("request trailers")
	}
	return st.decide(req.GetMetadataContext(), true, true)
}

func (st *stream) onResponseHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != awaitingResponseHeaders {
		return nil, st.outOfOrder("response headers")
	}
	st.served = servedEndpoint(req.GetMetadataContext())
	st.meter.start(h.GetHeaders(), st.srv.opts.MaxBodyBytes)
	out := []*extprocv3.ProcessingResponse{responseHeadersResponse(st.served)}
	if h.GetEndOfStream() {
		st.meter.sawByte(st.since())
		st.complete(nil)
		return out, nil
	}
	st.state = streamingResponseBody
	return out, nil
}

func (st *stream) onResponseBody(b *extprocv3.HttpBody) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != streamingResponseBody {
		return nil, st.outOfOrder("response body")
	}
	if len(b.GetBody()) > 0 || b.GetEndOfStream() {
		st.meter.sawByte(st.since())
	}
	st.meter.write(b.GetBody(), b.GetEndOfStream())
	out := []*extprocv3.ProcessingResponse{responseBodyResponse(b.GetBody(), b.GetEndOfStream())}
	if b.GetEndOfStream() {
		st.complete(nil)
	}
	return out, nil
}

func (st *stream) onResponseTrailers() ([]*extprocv3.ProcessingResponse, error) {
	if st.state != streamingResponseBody {
		return nil, st.outOfOrder("response trailers")
	}
	st.meter.write(nil, true)
	st.complete(nil)
	return []*extprocv3.ProcessingResponse{trailersResponse(false)}, nil
}

func (st *stream) since() time.Duration { return st.srv.now().Sub(st.decidedAt) }

// complete ends the response: the stream is done and the Decider told.
func (st *stream) complete(err error) {
	st.state = done
	st.finish(err)
}

// finish calls Done once for a routed request; err is why the stream
// ended early (nil when the response ended).
func (st *stream) finish(err error) {
	if !st.routed || st.reported {
		return
	}
	st.reported = true
	if st.state == done {
		err = nil
	} else if err == nil {
		err = errStreamClosed
	}
	o := st.meter.outcome(st.since())
	o.Err, o.Served = err, st.endpoints[0]
	if st.served != "" {
		o.Served = st.served
	}
	st.srv.decider.Done(st.picked, o)
}
