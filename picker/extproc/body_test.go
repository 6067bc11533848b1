package extproc

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

func TestParseModel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body, want string
		wantErr          error
	}{
		{name: "chat", body: `{"model":"llama","messages":[{"role":"user","content":"hi"}]}`, want: "llama"},
		{name: "model last", body: `{"prompt":["a","b"],"max_tokens":3,"model":"m2"}`, want: "m2"},
		{name: "embeddings", body: ` {"input":"x","model":"e5"} `, want: "e5"},
		{name: "nested model ignored", body: `{"messages":[{"model":"inner"}],"x":{"model":"deep"}}`, want: ""},
		{name: "escaped key", body: `{"mod\u0065l":"esc"}`, want: "esc"},
		{name: "escaped value", body: `{"model":"a\"b\\c\u00e9"}`, want: "a\"b\\c\u00e9"},
		{name: "strings with braces", body: `{"prompt":"}{\"model\":\"no\"}]","model":"yes"}`, want: "yes"},
		{name: "repeated key: last wins", body: `{"model":"a","model":"b"}`, want: "b"},
		{name: "case matters", body: `{"Model":"a"}`, want: ""},
		{name: "literals", body: `{"a":true,"b":null,"c":-1.5e3,"model":"m"}`, want: "m"},
		{name: "empty object", body: `{}`, want: ""},
		{name: "not JSON", body: `model=m`, wantErr: errNotJSON},
		{name: "truncated", body: `{"model":"m"`, wantErr: errNotJSON},
		{name: "array", body: `[{"model":"m"}]`, wantErr: errNotObject},
		{name: "model number", body: `{"model":1}`, wantErr: errModelString},
		{name: "model null", body: `{"model":null}`, wantErr: errModelString},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseModel([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("parseModel(%s) = %q, %v; want %q, %v", tt.body, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMediaTypeIs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		ct, want string
		ok       bool
	}{
		{"application/json", "application/json", true},
		{"Application/JSON; charset=utf-8", "application/json", true},
		{"application/vnd.api+json", "application/json", true},
		{"text/plain", "application/json", false},
		{"application/jsonx", "application/json", false},
		{"text/event-stream", "text/event-stream", true},
		{"text/event-stream;charset=utf-8", "text/event-stream", true},
		{"application/json", "text/event-stream", false},
	} {
		if got := mediaTypeIs(tt.ct, tt.want); got != tt.ok {
			t.Errorf("mediaTypeIs(%q, %q) = %v", tt.ct, tt.want, got)
		}
	}
}

// TestSSEUsageAnySplit feeds an SSE body cut at every byte position: usage
// must come from the last data line before [DONE] wherever chunks end.
func TestSSEUsageAnySplit(t *testing.T) {
	t.Parallel()
	body := "event: x\ndata: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":4}}\r\n\r\n" +
		"data: [DONE]\n\ndata: {\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":100}}\n"
	for cut := range len(body) + 1 {
		var m responseMeter
		m.start(&corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "content-type", Value: "text/event-stream"}}}, 1<<20)
		m.write([]byte(body[:cut]), false)
		m.write([]byte(body[cut:]), true)
		if o := m.outcome(time.Second); o.PromptTokens != 9 || o.CompletionTokens != 4 {
			t.Fatalf("cut at %d: usage %d/%d, want 9/4", cut, o.PromptTokens, o.CompletionTokens)
		}
	}
}

func TestSSELongLineSkipped(t *testing.T) {
	t.Parallel()
	var m responseMeter
	m.start(&corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "content-type", RawValue: []byte("text/event-stream")}}}, 1<<20)
	m.write([]byte("data: {\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3}}\n"), false)
	long := "data: " + strings.Repeat("x", maxSSELine)
	for i := 0; i < len(long); i += 1000 {
		m.write([]byte(long[i:min(i+1000, len(long))]), false)
	}
	if !m.skipping || cap(m.line.b) != 0 {
		t.Errorf("over-long line: skipping %v, %d bytes still held", m.skipping, cap(m.line.b))
	}
	m.write([]byte("xx\ndata: [DONE]\n"), true)
	if o := m.outcome(0); o.PromptTokens != 2 || o.CompletionTokens != 3 {
		t.Errorf("usage %d/%d, want 2/3 (the over-long line is skipped)", o.PromptTokens, o.CompletionTokens)
	}
}

func TestJSONUsageLimit(t *testing.T) {
	t.Parallel()
	doc := `{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":6}}`
	for _, tt := range []struct {
		limit, parts int
		want         int
	}{{1 << 10, 1, 5}, {1 << 10, 4, 5}, {20, 4, 0}} {
		t.Run(fmt.Sprintf("limit %d in %d", tt.limit, tt.parts), func(t *testing.T) {
			t.Parallel()
			var m responseMeter
			m.start(&corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "Content-Type", Value: "application/json"}}}, tt.limit)
			parts := split([]byte(doc), tt.parts)
			for i, p := range parts {
				m.write(p, i == len(parts)-1)
			}
			if m.prompt != tt.want {
				t.Errorf("prompt tokens %d, want %d", m.prompt, tt.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		edit  func(*Options)
		flags []string
	}{
		{name: "defaults", edit: func(*Options) {}},
		{name: "no fallback", edit: func(o *Options) { o.FallbackEndpoints = 0 }, flags: []string{"--extproc.fallback-endpoints"}},
		{name: "tiny body", edit: func(o *Options) { o.MaxBodyBytes = 10 }, flags: []string{"--extproc.max-body-bytes"}},
		{name: "huge chunk", edit: func(o *Options) { o.ChunkBytes = 1 << 20 }, flags: []string{"--extproc.chunk-bytes"}},
		{name: "all wrong", edit: func(o *Options) { *o = Options{} }, flags: []string{"--extproc.fallback-endpoints", "--extproc.max-body-bytes", "--extproc.chunk-bytes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			tt.edit(&o)
			err := o.Validate()
			if (err != nil) != (len(tt.flags) > 0) {
				t.Fatalf("Validate() = %v", err)
			}
			for _, f := range tt.flags {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if _, err := New(&fakeDecider{}, o, nil); (err != nil) != (len(tt.flags) > 0) {
				t.Errorf("New() = %v", err)
			}
		})
	}
}
