package extproc

import (
	"errors"
	"io"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// PassThrough is the baseline the picker's request path is measured
// against (benchmarks and the extprocload run): an ext_proc server that
// answers every message at once, echoing bodies, and parses and decides
// nothing.
type PassThrough struct {
	extprocv3.UnimplementedExternalProcessorServer
}

// Process implements extprocv3.ExternalProcessorServer.
func (PassThrough) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var out *extprocv3.ProcessingResponse
		switch r := req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			out = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
		case *extprocv3.ProcessingRequest_RequestBody:
			out = appendRequestBody(nil, r.RequestBody.GetBody(), 1<<30, r.RequestBody.GetEndOfStream())[0]
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			out = responseHeadersResponse("")
		case *extprocv3.ProcessingRequest_ResponseBody:
			out = responseBodyResponse(r.ResponseBody.GetBody(), r.ResponseBody.GetEndOfStream())
		default:
			continue
		}
		if err := s.Send(out); err != nil {
			return err
		}
	}
}
