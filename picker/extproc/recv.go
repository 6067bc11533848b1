package extproc

import (
	"errors"
	"fmt"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errIdle: the phase's deadline passed with no message.
var errIdle = errors.New("phase deadline passed")

// received is one Recv's result.
type received struct {
	req *extprocv3.ProcessingRequest
	err error
}

// receiver reads the stream on its own goroutine, so that a stream gone
// quiet can be ended at its phase's deadline: gRPC has no per-Recv
// deadline, and a handler that returns cancels the stream, which ends
// the pending Recv. It stops after the first error (delivered: a client
// that left must be told from a silent one) or once stop is called.
type receiver struct {
	ch    chan received
	quit  chan struct{}
	timer *time.Timer
}

func startReceiver(gs extprocv3.ExternalProcessor_ProcessServer) *receiver {
	r := &receiver{ch: make(chan received), quit: make(chan struct{})}
	go func() {
		for {
			req, err := gs.Recv()
			select {
			case r.ch <- received{req, err}:
			case <-r.quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// next returns the next message, or errIdle when wait passes first.
func (r *receiver) next(wait time.Duration) (*extprocv3.ProcessingRequest, error) {
	if r.timer == nil {
		r.timer = time.NewTimer(wait)
	} else {
		r.timer.Reset(wait)
	}
	select {
	case m := <-r.ch:
		r.timer.Stop()
		return m.req, m.err
	case <-r.timer.C:
		return nil, errIdle
	}
}

// stop ends the reading goroutine once its pending Recv returns (at the
// latest when the handler returns and gRPC cancels the stream).
func (r *receiver) stop() {
	close(r.quit)
	if r.timer != nil {
		r.timer.Stop()
	}
}

// wait is how long the stream waits for its next message in its phase:
// while the request is undecided (and once the response is done) the
// request idle timeout; for the response headers, what is left of the
// response timeout since the decision (the cap on an unanswered pick's
// age); between response body chunks, the response idle timeout.
func (st *stream) wait() time.Duration {
	o := &st.srv.opts
	switch st.state {
	case awaitingResponseHeaders:
		return max(o.ResponseTimeout-st.since(), 0)
	case streamingResponseBody:
		return o.ResponseIdleTimeout
	}
	return o.RequestIdleTimeout
}

// expire ends a stream whose phase deadline passed. An undecided request
// with a body under way gets 408 (Envoy's answer to a request that does
// not arrive in time); a pick is released, so the endpoint's in-flight
// count comes back down; the gateway sees the stream end.
func (st *stream) expire() error {
	phase := st.state
	if phase != done {
		st.srv.counters.expired[phase].Add(1)
	}
	st.log.Debug("ext_proc stream idle past its deadline", "request_id", st.requestID, "phase", phase.String())
	switch phase {
	case bufferingRequestBody:
		st.srv.counters.refuse(RefusedTimeout)
		return st.reject(&rejection{status: 408, msg: "request body timed out", err: fmt.Errorf("%w: %s", errIdle, phase)})
	case awaitingResponseHeaders:
		st.finish(errPickExpired)
	case streamingResponseBody:
		st.finish(errResponseIdle)
	case done:
		return nil // the response is over; Envoy just did not close
	}
	return status.Errorf(codes.DeadlineExceeded, "ext_proc stream idle while %s", phase)
}
