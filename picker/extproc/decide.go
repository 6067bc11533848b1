package extproc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/headroom-dev/headroom/picker/subset"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Protocol names (GIE endpoint-picker protocol).
const (
	headerDestination   = "x-gateway-destination-endpoint"
	headerModel         = "x-gateway-model-name"
	headerObjective     = "x-gateway-inference-objective"
	headerSheddable     = "x-gateway-sheddable"
	namespaceLB         = "envoy.lb"
	keyDestination      = headerDestination
	keyServed           = "x-gateway-destination-endpoint-served"
	namespaceSubsetHint = "envoy.lb.subset_hint"
	keySubset           = "x-gateway-destination-endpoint-subset"
)

// decide reads the model (from the body when there is one), asks the
// Decider and builds the request-phase responses: the headers response,
// then the body chunks, then (trailers) an empty trailers response. md is
// the metadata_context of the message the decision is made on.
func (st *stream) decide(md *corev3.Metadata, withBody, trailers bool) ([]*extprocv3.ProcessingResponse, error) {
	setModel := ""
	if withBody && len(st.req.Body) > 0 {
		model, err := parseModel(st.req.Body)
		if err != nil {
			return nil, reject(400, "request body is not a JSON object", fmt.Errorf("%w: %w", ErrBadRequest, err))
		}
		if !st.modelHeader {
			if model == "" {
				return nil, reject(400, "missing model", fmt.Errorf("%w: no model in the body or %s", ErrBadRequest, headerModel))
			}
			st.req.Model, setModel = model, model
		}
	}
	if msg, err := checkModel(st.req.Model); err != nil {
		st.srv.counters.refuse(RefusedModel)
		return nil, reject(400, msg, fmt.Errorf("%w: %w", ErrBadRequest, err))
	}
	if md == nil {
		md = st.headerMeta
	}
	subset := subsetHint(md)
	if subset.Empty() {
		return nil, reject(503, "no endpoint in the gateway's subset", fmt.Errorf("%w: empty subset hint", ErrNoEndpoint))
	}
	st.req.Subset = subset
	st.req.Sheddable = st.sheddable()
	d, err := st.srv.decider.Decide(st.gs.Context(), &st.req)
	if err != nil {
		if ctxErr := st.gs.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("decide: %w", ctxErr)
		}
		code, msg := statusFor(err)
		return nil, reject(code, msg, fmt.Errorf("decide: %w", err))
	}
	if len(d.Endpoints) > 0 {
		st.picked = d.Endpoints[0]
	}
	st.endpoints = choose(d.Endpoints, subset, st.srv.opts.FallbackEndpoints)
	if len(st.endpoints) == 0 {
		err := fmt.Errorf("%w: decision %v outside subset %v", ErrNoEndpoint, d.Endpoints, subset)
		if st.picked != "" { // release what the Decider counted
			st.srv.decider.Done(st.picked, Outcome{Err: err})
		}
		return nil, reject(503, "no endpoint", err)
	}
	st.routed, st.decidedAt, st.state = true, st.srv.now(), awaitingResponseHeaders
	st.bodyBytes = len(st.req.Body)
	return st.requestResponses(setModel, withBody, trailers), nil
}

// requestResponses builds what the request phase sends once decided.
func (st *stream) requestResponses(setModel string, withBody, trailers bool) []*extprocv3.ProcessingResponse {
	contentLength := -1
	if withBody {
		contentLength = len(st.req.Body)
	}
	out := make([]*extprocv3.ProcessingResponse, 0, 2+len(st.req.Body)/st.srv.opts.ChunkBytes+1)
	out = append(out, requestHeadersResponse(strings.Join(st.endpoints, ","), contentLength, setModel))
	if withBody {
		out = appendRequestBody(out, st.req.Body, st.srv.opts.ChunkBytes, !trailers)
	}
	if trailers {
		out = append(out, trailersResponse(true))
	}
	return out
}

func (st *stream) sheddable() bool {
	if strings.EqualFold(st.req.Headers[headerSheddable], "true") {
		return true
	}
	obj := st.req.Headers[headerObjective]
	return obj != "" && st.srv.sheddable != nil && st.srv.sheddable(obj)
}

// statusFor maps a Decider error to an HTTP status and a short message.
func statusFor(err error) (int, string) {
	switch {
	case errors.Is(err, ErrShed):
		return 429, "request shed"
	case errors.Is(err, ErrBadRequest):
		return 400, "bad request"
	case errors.Is(err, ErrNoEndpoint):
		return 503, "no endpoint"
	case errors.Is(err, context.DeadlineExceeded):
		return 503, "decision timed out"
	}
	return 503, "endpoint picker failed"
}

// choose keeps the decision's endpoints that are in the subset (matched by
// IP, as the reference EPP does), drops empty and repeated ones, and
// keeps at most n.
func choose(eps []string, subset *subset.Hosts, n int) []string {
	out := make([]string, 0, min(len(eps), n))
	for _, e := range eps {
		if len(out) == n {
			break
		}
		e = strings.TrimSpace(e)
		if e == "" || strings.Contains(e, ",") || contains(out, e) {
			continue
		}
		if !subset.Allows(e) {
			continue
		}
		out = append(out, e)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// subsetHint reads filter_metadata["envoy.lb.subset_hint"]
// ["x-gateway-destination-endpoint-subset"]: a list of ip:port (a single
// comma-separated string is accepted too). nil when the key is absent; a
// present key that holds nothing usable is an empty subset.
func subsetHint(md *corev3.Metadata) *subset.Hosts {
	v, ok := md.GetFilterMetadata()[namespaceSubsetHint].GetFields()[keySubset]
	if !ok {
		return nil
	}
	var entries []string
	switch k := v.GetKind().(type) {
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			entries = append(entries, e.GetStringValue())
		}
	case *structpb.Value_StringValue:
		entries = strings.Split(k.StringValue, ",")
	}
	return subset.New(entries)
}

// servedEndpoint reads filter_metadata["envoy.lb"]
// ["x-gateway-destination-endpoint-served"]; empty when absent.
func servedEndpoint(md *corev3.Metadata) string {
	return strings.TrimSpace(md.GetFilterMetadata()[namespaceLB].GetFields()[keyServed].GetStringValue())
}
