package extproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

var (
	errNotJSON     = errors.New("not valid JSON")
	errNotObject   = errors.New("not a JSON object")
	errModelString = errors.New(`"model" is not a string`)
)

// parseModel returns the top-level "model" of an OpenAI request body
// (completions, chat completions, embeddings); "" when absent. The body
// must be one JSON object. It validates the body (json.Valid, no
// allocation), then walks the top level only, skipping every value but
// "model"; keys match exactly (encoding/json's struct decoding would also
// take "Model"), and a repeated key counts last, as in Python servers.
func parseModel(body []byte) (string, error) {
	if !json.Valid(body) {
		return "", errNotJSON
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return "", errNotObject
	}
	model := ""
	for i = skipSpace(body, i+1); body[i] != '}'; {
		keyEnd := endOfValue(body, i)
		key := body[i:keyEnd]
		v := skipSpace(body, skipSpace(body, keyEnd)+1) // past ':'
		vEnd := endOfValue(body, v)
		if isModelKey(key) {
			if body[v] != '"' {
				return "", errModelString
			}
			if err := json.Unmarshal(body[v:vEnd], &model); err != nil {
				return "", fmt.Errorf("model: %w", err)
			}
		}
		if i = skipSpace(body, vEnd); body[i] == ',' {
			i = skipSpace(body, i+1)
		}
	}
	return model, nil
}

func isModelKey(key []byte) bool {
	if string(key) == `"model"` {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	var k string
	return json.Unmarshal(key, &k) == nil && k == "model"
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// endOfValue returns the index just past the JSON value starting at i, in
// a document json.Valid accepted.
func endOfValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1
			}
		}
		return len(b)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = endOfValue(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	}
	j := i
	for j < len(b) && strings.IndexByte(",}] \t\r\n", b[j]) < 0 {
		j++
	}
	return j
}

// mediaTypeIs reports whether a Content-Type value names want (or a
// +json suffix of it), ignoring parameters and case.
func mediaTypeIs(contentType, want string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	if strings.EqualFold(mt, want) {
		return true
	}
	return want == "application/json" && len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json")
}

// usage is the token count of an OpenAI response or stream chunk.
type usage struct {
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// maxSSELine bounds the partial SSE line kept across chunks; a longer line
// is skipped (a usage chunk is a few hundred bytes).
const maxSSELine = 256 << 10

// responseMeter watches the response: status, first byte, and usage from
// a JSON body (kept up to a limit) or from the last SSE data line before
// "data: [DONE]" (scanned line by line; only the partial line and the
// last data line are kept). What it keeps counts against the server's
// budget; when the budget is spent it stops keeping (the usage goes
// unread) and the response passes through all the same.
type responseMeter struct {
	status    int
	streamed  bool
	json      bool
	firstByte time.Duration
	seen      bool

	budget *budget
	limit  int
	body   buffer // JSON body so far; dropped when over limit or budget
	over   bool

	line     buffer // SSE: the line carried over from the previous chunk
	skipping bool   // SSE: the current line overflowed; skip to its end
	last     buffer // SSE: the last data payload before [DONE]
	ended    bool   // SSE: saw [DONE]

	prompt, completion int
}

// release gives back what the meter holds.
func (m *responseMeter) release() {
	m.body.release()
	m.line.release()
	m.last.release()
}

func (m *responseMeter) start(hm *corev3.HeaderMap, limit int) {
	m.limit = limit
	m.body.budget, m.line.budget, m.last.budget = m.budget, m.budget, m.budget
	for _, h := range hm.GetHeaders() {
		v := h.GetValue()
		if raw := h.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		switch strings.ToLower(h.GetKey()) {
		case ":status":
			m.status, _ = strconv.Atoi(v)
		case "content-type":
			m.streamed = mediaTypeIs(v, "text/event-stream")
			m.json = mediaTypeIs(v, "application/json")
		}
	}
}

func (m *responseMeter) sawByte(d time.Duration) {
	if !m.seen {
		m.seen, m.firstByte = true, d
	}
}

// write meters one response body chunk; eos ends the body.
func (m *responseMeter) write(p []byte, eos bool) {
	switch {
	case m.streamed:
		m.scanSSE(p)
		if eos {
			m.endLine()
			m.readUsage(m.last.b)
		}
	case m.json:
		if eos && m.body.b == nil && !m.over {
			m.readUsage(p) // the whole body in one chunk: no copy
			return
		}
		if !m.over && m.body.append(p, m.limit) != nil {
			m.over = true
			m.body.release()
		}
		if eos && !m.over {
			m.readUsage(m.body.b)
		}
	}
}

// scanSSE splits p into lines; a line is only copied when it spans chunks.
func (m *responseMeter) scanSSE(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			m.carry(p)
			return
		}
		if len(m.line.b) == 0 && !m.skipping {
			m.onLine(p[:i])
		} else {
			m.carry(p[:i])
			m.endLine()
		}
		p = p[i+1:]
	}
}

func (m *responseMeter) carry(p []byte) {
	if m.skipping {
		return
	}
	if m.line.append(p, maxSSELine) != nil {
		m.skipping = true // over the line limit or the budget: skip it
		m.line.release()
	}
}

// endLine handles the carried line, if any.
func (m *responseMeter) endLine() {
	if !m.skipping && len(m.line.b) > 0 {
		m.onLine(m.line.b)
	}
	m.line.truncate()
	m.skipping = false
}

func (m *responseMeter) onLine(line []byte) {
	payload, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r"), []byte("data:"))
	if !ok || m.ended {
		return
	}
	payload = bytes.TrimSpace(payload)
	if string(payload) == "[DONE]" {
		m.ended = true
		return
	}
	m.last.truncate()
	if m.last.append(payload, maxSSELine) != nil {
		m.last.release() // over the budget: this payload goes unread
	}
}

func (m *responseMeter) readUsage(doc []byte) {
	var u usage
	if len(doc) == 0 || json.Unmarshal(doc, &u) != nil || u.Usage == nil {
		return
	}
	m.prompt, m.completion = u.Usage.PromptTokens, u.Usage.CompletionTokens
}

// outcome is the Outcome so far; total is the time since the decision.
func (m *responseMeter) outcome(total time.Duration) Outcome {
	return Outcome{
		Status: m.status, FirstByte: m.firstByte, Total: total,
		PromptTokens: m.prompt, CompletionTokens: m.completion, Streamed: m.streamed,
	}
}
