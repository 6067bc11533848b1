package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// respond runs the response phase: the upstream response headers, then
// each body chunk as it arrives, go through the picker (with the served
// endpoint in metadata_context), and what the picker returns is written to
// the client and flushed at once. A goroutine reads upstream and sends;
// the handler's goroutine receives and writes. The stream is then closed
// cleanly.
func (x *exchange) respond(c *call, up *upstream) error {
	resp := up.resp
	noBody := resp.ContentLength == 0 || x.out.method == http.MethodHead ||
		resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified
	md := x.g.responseMeta(up.endpoint)
	if err := x.stream.Send(responseHeadersMsg(resp, noBody, md)); err != nil && !errors.Is(err, io.EOF) {
		x.abort()
		return fmt.Errorf("send response headers: %w", err)
	}
	var pumped chan struct{}
	if !noBody {
		pumped = make(chan struct{})
		go x.pump(resp.Body, md, pumped)
	}
	err := x.relayProcessed(c, resp, noBody)
	if pumped != nil {
		if err != nil || !x.upstreamEOF.Load() {
			// Failed, or the picker ended the body early: stop reading
			// upstream and the stream.
			c.cancel()
			x.abort()
		}
		<-pumped
		if err != nil && x.pumpErr != nil {
			err = x.pumpErr // the cause
		}
	}
	if err != nil {
		x.abort()
		return err
	}
	x.close()
	return nil
}

// pump reads the upstream body and sends each chunk to the picker as it
// arrives, end_of_stream at the end; a read error cancels the stream.
func (x *exchange) pump(body io.Reader, md *corev3.Metadata, done chan<- struct{}) {
	defer close(done)
	bp := x.g.bufs.Get().(*[]byte)
	defer x.g.bufs.Put(bp)
	for {
		n, err := body.Read(*bp)
		eof := errors.Is(err, io.EOF)
		if eof {
			x.upstreamEOF.Store(true)
		}
		if n > 0 || eof {
			// Send copies the chunk into the gRPC frame, so the buffer can
			// be reused at once.
			if serr := x.stream.Send(responseBodyMsg((*bp)[:n], eof, md)); serr != nil {
				return // the receiving side sees the stream fail
			}
		}
		if eof {
			return
		}
		if err != nil {
			x.pumpErr = fmt.Errorf("read upstream body: %w", err)
			x.cancel()
			return
		}
	}
}

// relayProcessed writes the response as the picker returns it: headers
// (mutated), then the body chunks.
func (x *exchange) relayProcessed(c *call, resp *http.Response, noBody bool) error {
	hr, err := x.recvResponseHeaders()
	if err != nil {
		return err
	}
	if imm := hr.GetImmediateResponse(); imm != nil {
		x.g.rejected.Add(1)
		x.headerSent = true
		writeImmediate(c.w, imm)
		return nil
	}
	h := c.w.Header()
	copyHeaders(h, resp.Header)
	h.Del("Content-Length") // the picker may change the body
	status := resp.StatusCode
	applyMutation(hr.GetResponseHeaders().GetResponse().GetHeaderMutation(), h, func(k, v string) {
		if n, err := strconv.Atoi(v); k == ":status" && err == nil && n >= 200 && n <= 599 {
			status = n
		}
	})
	c.w.WriteHeader(status)
	x.headerSent = true
	rc := http.NewResponseController(c.w)
	// Send the headers on at once, as Envoy does: a response cut before
	// its first chunk then reaches the client as a cut 200, not as a
	// connection closed without a status.
	_ = rc.Flush()
	if noBody {
		return nil
	}
	for {
		m, err := x.stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: stream ended before the response did", errProtocol)
		}
		if err != nil {
			return fmt.Errorf("receive response body: %w", err)
		}
		chunk, eos, err := responseChunk(m)
		if err != nil {
			return err
		}
		if len(chunk) > 0 {
			if _, err := c.w.Write(chunk); err != nil {
				return fmt.Errorf("write response: %w", err)
			}
			_ = rc.Flush()
		}
		if eos {
			return nil
		}
	}
}

// recvResponseHeaders reads up to the response-headers response (or an
// ImmediateResponse), skipping what is left of the request phase.
func (x *exchange) recvResponseHeaders() (*extprocv3.ProcessingResponse, error) {
	for {
		m, err := x.stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: stream ended before the response headers response", errProtocol)
		}
		if err != nil {
			return nil, fmt.Errorf("receive response headers: %w", err)
		}
		switch m.GetResponse().(type) {
		case *extprocv3.ProcessingResponse_ResponseHeaders, *extprocv3.ProcessingResponse_ImmediateResponse:
			return m, nil
		case *extprocv3.ProcessingResponse_RequestBody, *extprocv3.ProcessingResponse_RequestTrailers, nil:
			continue
		}
		return nil, fmt.Errorf("%w: %T before the response headers response", errProtocol, m.GetResponse())
	}
}

// responseChunk is a response-body answer's chunk and end_of_stream;
// other answers while the body streams carry no body.
func responseChunk(m *extprocv3.ProcessingResponse) ([]byte, bool, error) {
	switch r := m.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ResponseBody:
		switch b := r.ResponseBody.GetResponse().GetBodyMutation().GetMutation().(type) {
		case *extprocv3.BodyMutation_StreamedResponse:
			return b.StreamedResponse.GetBody(), b.StreamedResponse.GetEndOfStream(), nil
		case *extprocv3.BodyMutation_Body:
			return b.Body, true, nil
		case *extprocv3.BodyMutation_ClearBody:
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("%w: response body response without streamed_response", errProtocol)
	case *extprocv3.ProcessingResponse_ResponseTrailers, *extprocv3.ProcessingResponse_RequestBody,
		*extprocv3.ProcessingResponse_RequestTrailers, nil:
		return nil, false, nil
	}
	return nil, false, fmt.Errorf("%w: %T while the response body streams", errProtocol, m.GetResponse())
}
