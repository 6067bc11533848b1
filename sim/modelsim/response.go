package modelsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// filler are the words the simulator "generates": token i is
// " " + filler[i%len(filler)].
var filler = [...]string{"the", "quick", "brown", "fox", "jumps", "over", "a", "lazy",
	"dog", "while", "simulated", "GPUs", "hum", "along", "in", "batches"}

// fillerText is the text of tokens [from, to).
func fillerText(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteByte(' ')
		b.WriteString(filler[i%len(filler)])
	}
	return b.String()
}

// job is one HTTP generation request: the scheduler's request and what
// its response needs.
type job struct {
	req          *request
	chat         bool
	stream       bool
	includeUsage bool
	id           string
	created      int64
	model        string
}

func (s *Server) newJob(chat bool, ar apiRequest, r *request) *job {
	prefix := "cmpl"
	if chat {
		prefix = "chatcmpl"
	}
	return &job{
		req: r, chat: chat, stream: ar.Stream,
		includeUsage: ar.StreamOptions != nil && ar.StreamOptions.IncludeUsage,
		id:           fmt.Sprintf("%s-%s-%d", prefix, s.name, s.ids.Add(1)),
		created:      time.Now().Unix(), model: s.model,
	}
}

// Response shapes (OpenAI's).
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type message struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type choice struct {
	Index        int      `json:"index"`
	Text         *string  `json:"text,omitempty"`
	Message      *message `json:"message,omitempty"`
	Delta        *message `json:"delta,omitempty"`
	Logprobs     any      `json:"logprobs"`
	FinishReason *string  `json:"finish_reason"`
}

type response struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage,omitempty"`
}

func (j *job) usage() *usage {
	return &usage{PromptTokens: j.req.promptTokens, CompletionTokens: j.req.maxTokens,
		TotalTokens: j.req.promptTokens + j.req.maxTokens}
}

func (j *job) envelope(object string, c ...choice) response {
	return response{ID: j.id, Object: object, Created: j.created, Model: j.model, Choices: c}
}

// whole is the non-streaming response.
func (j *job) whole() response {
	text, reason := fillerText(0, j.req.maxTokens), "length"
	c := choice{FinishReason: &reason}
	object := "text_completion"
	if j.chat {
		object, c.Message = "chat.completion", &message{Role: "assistant", Content: &text}
	} else {
		c.Text = &text
	}
	resp := j.envelope(object, c)
	resp.Usage = j.usage()
	return resp
}

// chunk is a streamed chunk carrying tokens [from, to), or the final one
// (no text, finish_reason "length"). The first chat chunk carries the role.
func (j *job) chunk(from, to int, final bool) response {
	var c choice
	if final {
		reason := "length"
		c.FinishReason = &reason
	}
	text := fillerText(from, to)
	if !j.chat {
		c.Text = &text
		return j.envelope("text_completion", c)
	}
	c.Delta = &message{}
	if from == 0 && !final {
		c.Delta.Role = "assistant"
	}
	if !final {
		c.Delta.Content = &text
	}
	return j.envelope("chat.completion.chunk", c)
}

// serveWhole answers once the request is done: 200 with the completion,
// or 503 when the server stopped first.
func (s *Server) serveWhole(w http.ResponseWriter, r *http.Request, j *job) {
	select {
	case <-r.Context().Done():
		s.abort(j.req)
		return
	case <-j.req.done:
	}
	if err := j.req.err; err != nil {
		writeError(w, unavailable(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(j.whole())
}

// sse writes server-sent events and flushes them.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (e sse) data(v any) {
	b, _ := json.Marshal(v) // response types always marshal
	_, _ = fmt.Fprintf(e.w, "data: %s\n\n", b)
}

func (e sse) done() {
	_, _ = e.w.Write([]byte("data: [DONE]\n\n"))
	_ = e.rc.Flush()
}

// serveStream streams the request: headers at once, the first token as
// soon as it exists, later tokens every FlushInterval (several tokens a
// chunk), then the final chunk, the usage chunk when asked for, and
// [DONE]. A request the server stops ends with an error event (then
// [DONE], as vLLM does).
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, j *job) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	out := sse{w: w, rc: http.NewResponseController(w)}
	_ = out.rc.Flush()
	sent := 0
	send := func(upTo int) {
		if upTo > sent {
			out.data(j.chunk(sent, upTo, false))
			_ = out.rc.Flush()
			sent = upTo
		}
	}
	first := j.req.first
	var tick <-chan time.Time
	var ticker *time.Ticker
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	for {
		select {
		case <-r.Context().Done():
			s.abort(j.req)
			return
		case <-first:
			first = nil
			send(int(j.req.progress.Load()))
			ticker = time.NewTicker(s.flush)
			tick = ticker.C
		case <-tick:
			send(int(j.req.progress.Load()))
		case <-j.req.done:
			if err := j.req.err; err != nil {
				out.data(map[string]*apiError{"error": unavailable(err)})
				out.done()
				return
			}
			send(j.req.maxTokens)
			out.data(j.chunk(sent, sent, true))
			if j.includeUsage {
				u := j.envelope(chunkObject(j.chat))
				u.Choices, u.Usage = []choice{}, j.usage()
				out.data(u)
			}
			out.done()
			return
		}
	}
}

func chunkObject(chat bool) string {
	if chat {
		return "chat.completion.chunk"
	}
	return "text_completion"
}
