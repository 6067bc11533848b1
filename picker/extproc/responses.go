package extproc

import (
	"encoding/json"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// requestHeadersResponse routes the request: clear_route_cache, the
// destination header, Content-Length (when contentLength >= 0), the model
// header (when model is not empty) and the envoy.lb dynamic metadata with
// the same destination value.
func requestHeadersResponse(destination string, contentLength int, model string) *extprocv3.ProcessingResponse {
	set := make([]*corev3.HeaderValueOption, 0, 3)
	set = append(set, setHeader(headerDestination, destination))
	if contentLength >= 0 {
		set = append(set, setHeader("content-length", strconv.Itoa(contentLength)))
	}
	if model != "" {
		set = append(set, setHeader(headerModel, model))
	}
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{
			Response: &extprocv3.CommonResponse{
				ClearRouteCache: true,
				HeaderMutation:  &extprocv3.HeaderMutation{SetHeaders: set},
			},
		}},
		DynamicMetadata: lbMetadata(keyDestination, destination),
	}
}

// setHeader overwrites (or adds) one header.
func setHeader(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: k, RawValue: []byte(v)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}

// lbMetadata is {"envoy.lb": {key: value}}.
func lbMetadata(key, value string) *structpb.Struct {
	return &structpb.Struct{Fields: map[string]*structpb.Value{
		namespaceLB: structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{
			key: structpb.NewStringValue(value),
		}}),
	}}
}

// appendRequestBody appends body as streamed chunks of at most size
// bytes (sub-slices, not copies); the last carries eos. An empty body is
// one empty chunk.
func appendRequestBody(out []*extprocv3.ProcessingResponse, body []byte, size int, eos bool) []*extprocv3.ProcessingResponse {
	for first := true; first || len(body) > 0; first = false {
		n := min(len(body), size)
		out = append(out, &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{
				Response: streamedBody(body[:n], eos && n == len(body)),
			}},
		})
		body = body[n:]
	}
	return out
}

func streamedBody(chunk []byte, eos bool) *extprocv3.CommonResponse {
	return &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{
		Mutation: &extprocv3.BodyMutation_StreamedResponse{
			StreamedResponse: &extprocv3.StreamedBodyResponse{Body: chunk, EndOfStream: eos},
		},
	}}
}

// responseHeadersResponse passes the response headers on; when Envoy told
// which endpoint served, it is set as envoy.lb dynamic metadata.
func responseHeadersResponse(served string) *extprocv3.ProcessingResponse {
	r := &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{
			Response: &extprocv3.CommonResponse{},
		}},
	}
	if served != "" {
		r.DynamicMetadata = lbMetadata(keyServed, served)
	}
	return r
}

// responseBodyResponse echoes one response body chunk.
func responseBodyResponse(chunk []byte, eos bool) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
			Response: streamedBody(chunk, eos),
		}},
	}
}

// trailersResponse passes request or response trailers on unchanged.
func trailersResponse(request bool) *extprocv3.ProcessingResponse {
	if request {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{
			RequestTrailers: &extprocv3.TrailersResponse{},
		}}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{
		ResponseTrailers: &extprocv3.TrailersResponse{},
	}}
}

// errorBody is the JSON of an ImmediateResponse, shaped like OpenAI's.
type errorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// immediate ends the request with an HTTP status and a short JSON body;
// retryAfter, when positive, is sent as Retry-After (seconds), which a
// 429 for a passing overload carries.
func immediate(code int, msg string, retryAfter int) *extprocv3.ProcessingResponse {
	var e errorBody
	e.Error.Code, e.Error.Message = code, msg
	body, _ := json.Marshal(e) // cannot fail: two plain fields
	set := []*corev3.HeaderValueOption{setHeader("content-type", "application/json")}
	if retryAfter > 0 {
		set = append(set, setHeader("retry-after", strconv.Itoa(retryAfter)))
	}
	return &extprocv3.ProcessingResponse{
		Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(code)},
			Headers: &extprocv3.HeaderMutation{SetHeaders: set},
			Body:    body,
			Details: "headroom_picker_" + strconv.Itoa(code),
		}},
	}
}
