package gateway

import (
	"net/http"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// GIE endpoint-picker protocol names.
const (
	headerDestination   = "x-gateway-destination-endpoint"
	namespaceLB         = "envoy.lb"
	keyServed           = "x-gateway-destination-endpoint-served"
	namespaceSubsetHint = "envoy.lb.subset_hint"
	keySubset           = "x-gateway-destination-endpoint-subset"
)

// subsetHint is filter_metadata["envoy.lb.subset_hint"]
// ["x-gateway-destination-endpoint-subset"] = eps, as a GIE gateway sends
// with every request message.
func subsetHint(eps []string) *corev3.Metadata {
	l := make([]*structpb.Value, len(eps))
	for i, e := range eps {
		l[i] = structpb.NewStringValue(e)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		namespaceSubsetHint: {Fields: map[string]*structpb.Value{keySubset: structpb.NewListValue(&structpb.ListValue{Values: l})}},
	}}
}

// responseMeta is the response phase's metadata_context: the request's
// (the subset hint) plus envoy.lb x-gateway-destination-endpoint-served.
func (g *Gateway) responseMeta(served string) *corev3.Metadata {
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		namespaceLB: {Fields: map[string]*structpb.Value{keyServed: structpb.NewStringValue(served)}},
	}}
	for k, v := range g.reqMeta.GetFilterMetadata() {
		md.FilterMetadata[k] = v
	}
	return md
}

// headerList builds an ext_proc header map entry list; keys are
// lower-cased as Envoy sends them, values go in raw_value.
type headerList []*corev3.HeaderValue

func (l *headerList) add(k, v string) {
	*l = append(*l, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
}

func (l *headerList) addHeader(h http.Header) {
	for k, vs := range h {
		lk := strings.ToLower(k)
		for _, v := range vs {
			l.add(lk, v)
		}
	}
}

// requestHeadersMsg is the first message of a stream: the pseudo-headers,
// content-length, the client's headers and the protocol configuration.
func (g *Gateway) requestHeadersMsg(o *outbound, eos bool) *extprocv3.ProcessingRequest {
	hs := make(headerList, 0, len(o.header)+5)
	hs.add(":method", o.method)
	hs.add(":path", o.path)
	hs.add(":authority", o.host)
	hs.add(":scheme", "http")
	if len(o.body) > 0 {
		hs.add("content-length", strconv.Itoa(len(o.body)))
	}
	hs.addHeader(o.header)
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: eos,
		}},
		MetadataContext: g.reqMeta,
		ProtocolConfig:  g.protocol,
	}
}

func requestBodyMsg(chunk []byte, eos bool, md *corev3.Metadata) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request:         &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: chunk, EndOfStream: eos}},
		MetadataContext: md,
	}
}

func responseHeadersMsg(resp *http.Response, eos bool, md *corev3.Metadata) *extprocv3.ProcessingRequest {
	hs := make(headerList, 0, len(resp.Header)+1)
	hs.add(":status", strconv.Itoa(resp.StatusCode))
	for k, vs := range resp.Header {
		if isHopHeader(k) {
			continue
		}
		lk := strings.ToLower(k)
		for _, v := range vs {
			hs.add(lk, v)
		}
	}
	return &extprocv3.ProcessingRequest{
		Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: eos,
		}},
		MetadataContext: md,
	}
}

func responseBodyMsg(chunk []byte, eos bool, md *corev3.Metadata) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{
		Request:         &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: chunk, EndOfStream: eos}},
		MetadataContext: md,
	}
}

// applyMutation applies a header mutation to h, as Envoy's ext_proc
// filter does: set_headers by their append_action (empty values dropped
// unless keep_empty_value), then remove_headers. Pseudo-headers (and
// host) go to pseudo, when not nil; they cannot be removed.
func applyMutation(m *extprocv3.HeaderMutation, h http.Header, pseudo func(k, v string)) {
	for _, o := range m.GetSetHeaders() {
		k := strings.ToLower(o.GetHeader().GetKey())
		v := o.GetHeader().GetValue()
		if raw := o.GetHeader().GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		if k == "" || (v == "" && !o.GetKeepEmptyValue()) {
			continue
		}
		if strings.HasPrefix(k, ":") || k == "host" {
			if pseudo != nil {
				pseudo(k, v)
			}
			continue
		}
		ck := http.CanonicalHeaderKey(k)
		_, exists := h[ck]
		switch o.GetAppendAction() {
		case corev3.HeaderValueOption_ADD_IF_ABSENT:
			if !exists {
				h[ck] = []string{v}
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
			if exists {
				h[ck] = []string{v}
			}
		case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
			h[ck] = []string{v}
		default: // APPEND_IF_EXISTS_OR_ADD
			h[ck] = append(h[ck], v)
		}
	}
	for _, k := range m.GetRemoveHeaders() {
		if !strings.HasPrefix(k, ":") {
			h.Del(k)
		}
	}
}

// requestPseudo applies a mutation of :path, :method or :authority.
func (o *outbound) requestPseudo(k, v string) {
	switch k {
	case ":path":
		if strings.HasPrefix(v, "/") {
			o.path = v
		}
	case ":method":
		o.method = v
	case ":authority", "host":
		o.host = v
	}
}

// parseDestinations reads a comma-separated ip:port fallback list,
// dropping empty, malformed and repeated entries.
func parseDestinations(v string) []string {
	var out []string
	for e := range strings.SplitSeq(v, ",") {
		e = strings.TrimSpace(e)
		if e == "" || !validHostPort(e) || strings.ContainsAny(e, "/@?#") {
			continue
		}
		dup := false
		for _, x := range out {
			dup = dup || x == e
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
}

// writeImmediate writes the picker's ImmediateResponse to the client.
func writeImmediate(w http.ResponseWriter, r *extprocv3.ImmediateResponse) {
	code := http.StatusOK // Envoy's default when no status is set
	if r.GetStatus() != nil {
		code = int(r.GetStatus().GetCode())
	}
	if code < 200 || code > 599 {
		code = http.StatusInternalServerError
	}
	h := w.Header()
	applyMutation(r.GetHeaders(), h, nil)
	h.Set("Content-Length", strconv.Itoa(len(r.GetBody())))
	w.WriteHeader(code)
	_, _ = w.Write(r.GetBody())
}
