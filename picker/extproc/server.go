// Package extproc is headroom-picker's request path: an Envoy ext_proc
// server that speaks the Gateway API Inference Extension endpoint-picker
// protocol. For each HTTP request it buffers the body (the gateway runs
// request and response bodies FULL_DUPLEX_STREAMED), reads the model,
// asks a Decider for the endpoints, and answers with the request-headers
// response (x-gateway-destination-endpoint, envoy.lb dynamic metadata,
// clear_route_cache, Content-Length) followed by the body re-chunked. It
// then passes the response through, timing it and reading its token usage,
// and tells the Decider how the request went.
//
// Each gRPC stream is one HTTP request, driven by a small state machine
// (see stream.go): one handler per phase, one ordered send function, and
// builders for the proto responses (responses.go).
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/headroom-dev/headroom/picker/subset"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors a Decider returns; anything else maps to 503.
var (
	// ErrNoEndpoint: no ready endpoint (or none in the subset) serves the
	// request, or the model is unknown. 503.
	ErrNoEndpoint = errors.New("no endpoint")
	// ErrShed: the request is sheddable and the pool is saturated. 429.
	ErrShed = errors.New("request shed")
	// ErrBadRequest: the request is malformed. 400.
	ErrBadRequest = errors.New("bad request")
)

// Request is what the decision needs from one HTTP request.
type Request struct {
	// Model is the body's "model", or the x-gateway-model-name header when
	// a Body Based Router set it. Empty for a request without a body.
	Model string
	// Headers are the request headers, names lower-cased (pseudo-headers
	// such as :path included); repeated headers are comma-joined.
	Headers map[string]string
	// Path and Method are the :path and :method pseudo-headers.
	Path, Method string
	// Body is the buffered request body, shared with the server: a
	// Decider must not modify or keep it.
	Body []byte
	// Subset is the gateway's subset hint; nil when none. The server has
	// already refused a request whose hint allows nothing.
	Subset *subset.Hosts
	// Sheddable is true for header x-gateway-sheddable: true, or when the
	// server's sheddable hook says so for the x-gateway-inference-objective.
	Sheddable bool
}

// Decision is the endpoints chosen for a request.
type Decision struct {
	// Endpoints are "ip:port", best first: the first is the destination,
	// the following ones the gateway's fallbacks.
	Endpoints []string
}

// Outcome is how a routed request went.
type Outcome struct {
	// Status is the response's HTTP status; 0 when none arrived.
	Status int
	// FirstByte is from the routing decision to the first response body
	// byte (to the response headers when the response has no body); Total
	// is to the end of the response or of the stream.
	FirstByte, Total time.Duration
	// PromptTokens and CompletionTokens are the response's usage, 0 when
	// it had none.
	PromptTokens, CompletionTokens int
	// RequestBytes is the length of the request body that was sent on.
	RequestBytes int
	// Streamed is true for a text/event-stream response.
	Streamed bool
	// Err is why the stream ended before the response did; nil otherwise.
	Err error
	// Served is the endpoint that served the request: the one Envoy
	// reported, else the first of the fallback list sent. Empty when the
	// request was not sent anywhere.
	Served string
}

// Decider picks endpoints. It is called from many streams at once.
type Decider interface {
	// Decide returns the endpoints for r. Errors: ErrNoEndpoint (503),
	// ErrShed (429), ErrBadRequest (400); anything else is 503.
	Decide(ctx context.Context, r *Request) (Decision, error)
	// Done is called exactly once for every successful Decide, with the
	// first endpoint that Decide returned (whatever the gateway did with
	// the list: o.Served says who served), when the response ends, the
	// stream breaks, or the request is refused after the decision.
	Done(picked string, o Outcome)
}

// Server is the ext_proc server.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
	decider   Decider
	opts      Options
	log       *slog.Logger
	sheddable func(objective string) bool
	now       func() time.Time
	// budget is the bytes all streams may hold; counters feed Stats.
	budget   budget
	counters counters
}

// ServerOption customises a Server.
type ServerOption func(*Server)

// WithSheddable sets the hook that says whether requests for an
// InferenceObjective are sheddable (its priority is negative).
func WithSheddable(f func(objective string) bool) ServerOption {
	return func(s *Server) { s.sheddable = f }
}

// New returns a server deciding through d. opts must be valid.
func New(d Decider, opts Options, log *slog.Logger, so ...ServerOption) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("extproc options: %w", err)
	}
	if d == nil {
		return nil, errors.New("extproc: nil decider")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{decider: d, opts: opts, log: log, now: time.Now, budget: budget{limit: opts.MaxBufferedBytes}}
	for _, o := range so {
		o(s)
	}
	return s, nil
}

// Process runs one ext_proc stream: one HTTP request and its response.
// Over --extproc.max-streams the request is answered 429 at once; every
// phase has a deadline (see stream.wait).
func (s *Server) Process(gs extprocv3.ExternalProcessor_ProcessServer) error {
	st := newStream(s, gs)
	defer st.release()
	in := startReceiver(gs)
	defer in.stop()
	if n := s.counters.streams.Add(1); n > int64(s.opts.MaxStreams) {
		s.counters.streams.Add(-1)
		return st.overCapacity(in)
	}
	defer s.counters.streams.Add(-1)
	for {
		req, err := in.next(st.wait())
		if errors.Is(err, errIdle) {
			return st.expire()
		}
		if err != nil {
			return st.closed(err)
		}
		out, herr := st.handle(req)
		if err := st.send(out...); err != nil {
			return st.broken(fmt.Errorf("send: %w", err))
		}
		st.sent()
		if herr == nil {
			continue
		}
		if rej, ok := errors.AsType[*rejection](herr); ok {
			return st.reject(rej)
		}
		return st.broken(herr)
	}
}

// overCapacity answers a stream over the limit with 429 once its request
// headers arrive (Envoy sends them first, at once), holding no slot.
func (st *stream) overCapacity(in *receiver) error {
	st.srv.counters.refuse(RefusedStreams)
	if _, err := in.next(st.srv.opts.RequestIdleTimeout); err != nil {
		return nil // gone, or silent: nothing to answer
	}
	return st.reject(&rejection{status: 429, msg: "too many requests in flight at the endpoint picker", retryAfter: 1,
		err: fmt.Errorf("over --extproc.max-streams %d", st.srv.opts.MaxStreams)})
}

// closed ends the stream after Recv failed: io.EOF or a cancelled
// context is Envoy closing (the client left, or the request is over).
func (st *stream) closed(err error) error {
	if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled || errors.Is(err, context.Canceled) {
		st.finish(errStreamClosed)
		return nil // Done, if due, has the error
	}
	return st.broken(fmt.Errorf("receive: %w", err))
}

// broken ends the stream with an error: a protocol error is
// InvalidArgument, a stream whose context ended (Envoy left while the
// Decider ran) ends cleanly, anything else (a failed send) is Unavailable.
func (st *stream) broken(err error) error {
	st.finish(err)
	switch {
	case errors.Is(err, errProtocol):
		st.log.Warn("ext_proc protocol error", "request_id", st.requestID, "err", err)
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return nil
	}
	st.log.Debug("ext_proc stream broken", "request_id", st.requestID, "err", err)
	return status.Error(codes.Unavailable, err.Error())
}

// reject answers with an ImmediateResponse and ends the stream.
func (st *stream) reject(rej *rejection) error {
	st.log.Debug("request rejected", "request_id", st.requestID, "status", rej.status, "err", rej.err)
	err := st.send(immediate(rej.status, rej.msg, rej.retryAfter))
	st.finish(rej.err)
	if err != nil {
		return status.Error(codes.Unavailable, fmt.Sprintf("send immediate response: %v", err))
	}
	return nil
}
