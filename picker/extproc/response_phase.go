package extproc

import (
	"net/netip"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

func (st *stream) onResponseHeaders(req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) ([]*extprocv3.ProcessingResponse, error) {
	if st.state != awaitingResponseHeaders {
		return nil, st.outOfOrder("response headers")
	}
	st.served = st.routedServed(servedEndpoint(req.GetMetadataContext()))
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

// routedServed returns the endpoint Envoy says served the request when it
// is one of those this stream sent (Envoy can only have used those), in
// the form it was sent; anything else is ignored and counted, so that a
// response phase cannot train the speed of an endpoint it was not routed
// to.
func (st *stream) routedServed(served string) string {
	if served == "" {
		return ""
	}
	want, err := netip.ParseAddrPort(served)
	if err == nil {
		for _, e := range st.endpoints {
			if got, err := netip.ParseAddrPort(e); err == nil && got.Addr().Unmap() == want.Addr().Unmap() && got.Port() == want.Port() {
				return e
			}
		}
	}
	st.srv.counters.servedMismatch.Add(1)
	st.log.Debug("served endpoint not one the request was routed to: ignored", "request_id", st.requestID, "routed", st.endpoints)
	return ""
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

// complete ends the response: the stream is done and the Decider told.
func (st *stream) complete(err error) {
	st.state = done
	st.finish(err)
	st.meter.release()
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
	o.Err, o.Served, o.RequestBytes = err, st.endpoints[0], st.bodyBytes
	if st.served != "" {
		o.Served = st.served
	}
	st.srv.decider.Done(st.picked, o)
}
