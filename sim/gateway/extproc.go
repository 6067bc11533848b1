package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

var (
	// errProtocol is a picker message that does not fit the stream.
	errProtocol          = errors.New("ext_proc protocol error")
	errPickerUnavailable = errors.New("no picker answered")
	errPickerTimeout     = errors.New("picker did not decide in time")
)

// inlineBodyMax is the largest request body sent from the handler's
// goroutine before the answer is read: gRPC's flow-control windows (64 KiB
// to start) hold it even if a processor answered each chunk at once.
// Larger bodies are sent from a goroutine while the answer is read.
const inlineBodyMax = 64 << 10

// exchange is one request's ext_proc stream with one picker replica.
type exchange struct {
	g      *Gateway
	addr   string
	stream extprocv3.ExternalProcessor_ProcessClient
	cancel context.CancelFunc // ends the stream
	closed bool

	// out is the request as the picker left it: mutated headers, the body
	// it streamed back.
	out       *outbound
	immediate *extprocv3.ImmediateResponse
	destMeta  string // dynamic metadata envoy.lb x-gateway-destination-endpoint
	// sentAt is when the request headers went to the picker, decidedAt
	// when its answer naming the destination (or refusing) came back.
	sentAt, decidedAt time.Time

	upstreamEOF atomic.Bool // response phase: the upstream body ended
	pumpErr     error       // response phase: why reading upstream failed
	headerSent  bool        // response phase: the client has the headers
}

// serveExtProc routes a request the way Envoy with the GIE endpoint picker
// does.
func (g *Gateway) serveExtProc(c *call) {
	x, err := g.decide(c)
	if err != nil {
		switch {
		case c.ctx.Err() != nil:
			g.upstreamFailed(c, err)
		case g.opts.FailOpen:
			g.failedOpen.Add(1)
			g.log.Debug("failing open", "request_id", c.out.header.Get("X-Request-Id"), "err", err)
			g.serveWithPolicy(c, g.failOpen)
		default:
			g.fail(c, http.StatusServiceUnavailable, "endpoint picker unavailable", err)
		}
		return
	}
	defer x.close()
	if x.immediate != nil {
		g.rejected.Add(1)
		writeImmediate(c.w, x.immediate)
		return
	}
	eps := x.destinations()
	if len(eps) == 0 {
		g.fail(c, http.StatusServiceUnavailable, "no destination endpoint", errNoDestination)
		return
	}
	up, err := g.forward(c, x.out, eps)
	if err != nil {
		g.upstreamFailed(c, err)
		return
	}
	defer up.close()
	if err := x.respond(c, up); err != nil {
		if !x.headerSent {
			g.fail(c, http.StatusBadGateway, "upstream response failed", err)
			return
		}
		g.abort(c, err)
	}
}

// decide runs the request phase with the picker replicas in round-robin
// order, skipping a replica that fails before deciding.
func (g *Gateway) decide(c *call) (*exchange, error) {
	n := uint64(len(g.pickers))
	start := g.next.Add(1) - 1
	var errs []error
	for i := range n {
		p := g.pickers[(start+i)%n]
		t0 := time.Now()
		x, err := g.open(c, p)
		if err == nil {
			g.decisions.Add(1)
			g.decisionNanos.Add(uint64(time.Since(t0)))
			if !x.decidedAt.IsZero() {
				g.pickTimes.observe(x.decidedAt.Sub(x.sentAt))
			}
			return x, nil
		}
		if c.ctx.Err() != nil {
			return nil, fmt.Errorf("decide: %w", context.Cause(c.ctx))
		}
		g.pickerErrors.Add(1)
		g.log.Debug("picker replica failed", "picker", p.addr, "request_id", c.out.header.Get("X-Request-Id"), "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", p.addr, err))
	}
	return nil, fmt.Errorf("%w: %w", errPickerUnavailable, errors.Join(errs...))
}

// open starts a stream on one replica and runs the request phase, within
// PickerTimeout.
func (g *Gateway) open(c *call, p *pickerConn) (*exchange, error) {
	ctx, cancel := context.WithCancel(c.ctx)
	timer := time.AfterFunc(g.opts.PickerTimeout, cancel)
	var x *exchange
	stream, err := p.client.Process(ctx)
	if err == nil {
		x = &exchange{g: g, addr: p.addr, stream: stream, cancel: cancel, out: c.out.clone()}
		err = x.requestPhase()
	}
	stopped := timer.Stop()
	if err == nil && stopped {
		return x, nil
	}
	cancel()
	if !stopped && c.ctx.Err() == nil {
		return nil, fmt.Errorf("%w (%s)", errPickerTimeout, g.opts.PickerTimeout)
	}
	return nil, err
}

// requestPhase sends the request headers and body and reads the decision.
func (x *exchange) requestPhase() error {
	body := x.out.body
	hasBody := len(body) > 0
	x.sentAt = time.Now()
	err := x.stream.Send(x.g.requestHeadersMsg(x.out, !hasBody))
	var sent chan struct{}
	if err == nil && hasBody {
		if len(body) <= inlineBodyMax {
			err = x.sendBody(body)
		} else {
			sent = make(chan struct{})
			go func() {
				defer close(sent)
				_ = x.sendBody(body) // a failed stream shows in Recv
			}()
		}
	}
	// io.EOF: the picker ended the stream (an ImmediateResponse, say);
	// Recv tells how.
	if err == nil || errors.Is(err, io.EOF) {
		err = x.receiveDecision(hasBody)
	} else {
		err = fmt.Errorf("send request: %w", err)
	}
	if sent != nil {
		if err != nil {
			x.cancel()
		}
		<-sent
	}
	return err
}

// sendBody sends the body in ChunkBytes chunks, end_of_stream on the last,
// each with the request's metadata_context.
func (x *exchange) sendBody(body []byte) error {
	for size := x.g.opts.ChunkBytes; len(body) > 0; {
		n := min(len(body), size)
		if err := x.stream.Send(requestBodyMsg(body[:n], n == len(body), x.g.reqMeta)); err != nil {
			return err
		}
		body = body[n:]
	}
	return nil
}

// decisionState tracks the request phase's answers.
type decisionState struct {
	hasBody, headers, bodyStarted bool
	body                          []byte
}

// receiveDecision reads the picker's answer: the request-headers response
// and, for a request with a body, the body it streams back up to
// end_of_stream; or an ImmediateResponse.
func (x *exchange) receiveDecision(hasBody bool) error {
	st := decisionState{hasBody: hasBody}
	for {
		m, err := x.stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: stream ended before a decision", errProtocol)
		}
		if err != nil {
			return fmt.Errorf("receive decision: %w", err)
		}
		if v, ok := m.GetDynamicMetadata().GetFields()[namespaceLB].GetStructValue().GetFields()[headerDestination]; ok {
			x.destMeta = v.GetStringValue()
		}
		done, err := x.onDecisionMessage(m, &st)
		if err != nil || done {
			return err
		}
	}
}

func (x *exchange) onDecisionMessage(m *extprocv3.ProcessingResponse, st *decisionState) (bool, error) {
	switch r := m.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		x.immediate, x.decidedAt = r.ImmediateResponse, time.Now()
		return true, nil
	case *extprocv3.ProcessingResponse_RequestHeaders:
		if st.headers {
			return false, fmt.Errorf("%w: a second request headers response", errProtocol)
		}
		st.headers, x.decidedAt = true, time.Now()
		applyMutation(r.RequestHeaders.GetResponse().GetHeaderMutation(), x.out.header, x.out.requestPseudo)
		return !st.hasBody, nil
	case *extprocv3.ProcessingResponse_RequestBody:
		if !st.headers {
			return false, fmt.Errorf("%w: request body response before the headers response", errProtocol)
		}
		return x.onBodyMutation(r.RequestBody.GetResponse().GetBodyMutation(), st)
	case *extprocv3.ProcessingResponse_RequestTrailers, nil: // nil: flow control only
		return false, nil
	}
	return false, fmt.Errorf("%w: %T during the request phase", errProtocol, m.GetResponse())
}

// onBodyMutation collects the body the picker sends on (bodies are
// FULL_DUPLEX_STREAMED, so it comes back as streamed_response chunks).
func (x *exchange) onBodyMutation(mut *extprocv3.BodyMutation, st *decisionState) (bool, error) {
	switch b := mut.GetMutation().(type) {
	case *extprocv3.BodyMutation_StreamedResponse:
		chunk, eos := b.StreamedResponse.GetBody(), b.StreamedResponse.GetEndOfStream()
		switch {
		case !st.bodyStarted && eos:
			st.body = chunk // the whole body in one message: no copy
		case !st.bodyStarted:
			st.body = append(make([]byte, 0, max(len(x.out.body), len(chunk))), chunk...)
		default:
			st.body = append(st.body, chunk...)
		}
		st.bodyStarted = true
		if eos {
			x.out.body = st.body
		}
		return eos, nil
	case *extprocv3.BodyMutation_Body:
		x.out.body = b.Body
		return true, nil
	case *extprocv3.BodyMutation_ClearBody:
		x.out.body = nil
		return true, nil
	}
	return false, fmt.Errorf("%w: request body response without streamed_response", errProtocol)
}

// destinations are the endpoints to try: x-gateway-destination-endpoint,
// else the envoy.lb dynamic metadata of the same name.
func (x *exchange) destinations() []string {
	if vs := x.out.header.Values(headerDestination); len(vs) > 0 {
		if eps := parseDestinations(strings.Join(vs, ",")); len(eps) > 0 {
			return eps
		}
	}
	return parseDestinations(x.destMeta)
}

// close ends the stream cleanly unless it already ended: CloseSend, then
// read to its end, so the picker sees the gateway close it.
func (x *exchange) close() {
	if x.closed {
		return
	}
	x.closed = true
	_ = x.stream.CloseSend()
	t := time.AfterFunc(x.g.opts.PickerTimeout, x.cancel)
	for {
		if _, err := x.stream.Recv(); err != nil {
			break
		}
	}
	t.Stop()
	x.cancel()
}

// abort cancels the stream.
func (x *exchange) abort() {
	x.closed = true
	x.cancel()
}
