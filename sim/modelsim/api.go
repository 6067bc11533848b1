package modelsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// apiRequest is the union of the completion and chat request fields the
// simulator reads; unknown fields are ignored, as by vLLM.
type apiRequest struct {
	Model               string          `json:"model"`
	Prompt              json.RawMessage `json:"prompt"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// apiError is an OpenAI-style error, written as {"error": {...}}.
type apiError struct {
	status  int
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Type: "invalid_request_error", Code: code, Message: fmt.Sprintf(format, args...)}
}

func unavailable(err error) *apiError {
	code := "server_stopping"
	if errors.Is(err, ErrQueueFull) {
		code = "queue_full"
	}
	return &apiError{status: http.StatusServiceUnavailable, Type: "server_error", Code: code, Message: err.Error()}
}

func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]*apiError{"error": e})
}

// routes builds the handler; every response carries X-Served-By.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/v1/completions", s.inference(false))
	mux.Handle("/v1/chat/completions", s.inference(true))
	mux.HandleFunc("GET /v1/models", s.serveModels)
	mux.Handle("GET /metrics", s.metricsHandler())
	mux.HandleFunc("GET /health", s.serveHealth)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", s.name)
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) serveHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		writeError(w, unavailable(ErrStopped))
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) serveModels(w http.ResponseWriter, _ *http.Request) {
	type model struct {
		ID          string `json:"id"`
		Object      string `json:"object"`
		Created     int64  `json:"created"`
		OwnedBy     string `json:"owned_by"`
		MaxModelLen int    `json:"max_model_len"`
	}
	body := struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", []model{{ID: s.model, Object: "model", Created: time.Now().Unix(), OwnedBy: "headroom-modelsim", MaxModelLen: s.prof.KVCacheTokens}}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// inference serves one of the two generation endpoints.
func (s *Server) inference(chat bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, &apiError{status: http.StatusMethodNotAllowed, Type: "invalid_request_error",
				Code: "method_not_allowed", Message: fmt.Sprintf("method %s not allowed, use POST", r.Method)})
			return
		}
		j, apiErr := s.parse(w, r, chat)
		if apiErr != nil {
			writeError(w, apiErr)
			return
		}
		if err := s.enqueue(j.req); err != nil {
			writeError(w, unavailable(err))
			return
		}
		if j.stream {
			s.serveStream(w, r, j)
		} else {
			s.serveWhole(w, r, j)
		}
	})
}

// parse reads and checks a request body and makes its job.
func (s *Server) parse(w http.ResponseWriter, r *http.Request, chat bool) (*job, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &apiError{status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error",
				Code: "request_too_large", Message: fmt.Sprintf("request body over %d bytes", MaxBodyBytes)}
		}
		return nil, badRequest("invalid_body", "reading request body: %v", err)
	}
	var req apiRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, badRequest("invalid_json", "request body is not valid JSON: %v", err)
	}
	adapter, ok := s.adapterFor(req.Model)
	if !ok {
		return nil, &apiError{status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found",
			Message: fmt.Sprintf("the model %q does not exist (this server serves %q)", req.Model, s.model)}
	}
	var prompt int
	var apiErr *apiError
	if chat {
		prompt, apiErr = chatPromptTokens(req.Messages)
	} else {
		prompt, apiErr = promptTokens(req.Prompt)
	}
	if apiErr != nil {
		return nil, apiErr
	}
	maxTokens, apiErr := outputTokens(req, chat)
	if apiErr != nil {
		return nil, apiErr
	}
	if prompt+maxTokens > s.prof.KVCacheTokens {
		return nil, badRequest("context_length_exceeded",
			"this model's maximum context length is %d tokens, but %d were requested (%d in the prompt, %d for the completion)",
			s.prof.KVCacheTokens, prompt+maxTokens, prompt, maxTokens)
	}
	sr := newRequest(prompt, maxTokens)
	sr.blocks, sr.adapter = promptBlocks(promptBytes(req, chat)), adapter
	return s.newJob(chat, req, sr), nil
}

// promptBytes is the prompt as the request carried it, for the prefix
// cache: the raw JSON of prompt, or of every message's content in order.
func promptBytes(req apiRequest, chat bool) []byte {
	if !chat {
		return req.Prompt
	}
	var b []byte
	for _, m := range req.Messages {
		b = append(b, m.Content...)
	}
	return b
}

// outputTokens is the request's max_tokens (for chat,
// max_completion_tokens wins), DefaultMaxTokens when absent.
func outputTokens(req apiRequest, chat bool) (int, *apiError) {
	p, name := req.MaxTokens, "max_tokens"
	if chat && req.MaxCompletionTokens != nil {
		p, name = req.MaxCompletionTokens, "max_completion_tokens"
	}
	switch {
	case p == nil:
		return DefaultMaxTokens, nil
	case *p < 1:
		return 0, badRequest("invalid_value", "%s must be at least 1, got %d", name, *p)
	case *p > MaxOutputTokens:
		return 0, badRequest("invalid_value", "%s must be at most %d, got %d", name, MaxOutputTokens, *p)
	}
	return *p, nil
}

// promptTokens counts a completion prompt: a string, an array of strings
// (counted as one sequence, their concatenation), or token IDs (an array
// of integers, or of arrays of integers).
func promptTokens(raw json.RawMessage) (int, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, badRequest("missing_prompt", "prompt is required")
	}
	n, ok := 0, false
	var str string
	var strs []string
	var ids []int
	var idLists [][]int
	switch {
	case json.Unmarshal(raw, &str) == nil:
		n, ok = CountTokens(str), true
	case json.Unmarshal(raw, &strs) == nil:
		for _, p := range strs {
			n += CountTokens(p)
		}
		ok = true
	case json.Unmarshal(raw, &ids) == nil:
		n, ok = len(ids), true
	case json.Unmarshal(raw, &idLists) == nil:
		for _, l := range idLists {
			n += len(l)
		}
		ok = true
	}
	if !ok {
		return 0, badRequest("invalid_prompt", "prompt must be a string, an array of strings or token IDs")
	}
	if n == 0 {
		return 0, badRequest("invalid_prompt", "prompt is empty")
	}
	return n, nil
}

// chatPromptTokens sums the tokens of the messages' content: a string, or
// an array of parts whose text is counted.
func chatPromptTokens(msgs []chatMessage) (int, *apiError) {
	if len(msgs) == 0 {
		return 0, badRequest("missing_messages", "messages is required and must not be empty")
	}
	n := 0
	for i, m := range msgs {
		if len(m.Content) == 0 || string(m.Content) == "null" {
			continue
		}
		var str string
		if json.Unmarshal(m.Content, &str) == nil {
			n += CountTokens(str)
			continue
		}
		var parts []struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(m.Content, &parts) != nil {
			return 0, badRequest("invalid_content", "messages[%d].content must be a string or an array of content parts", i)
		}
		for _, p := range parts {
			n += CountTokens(p.Text)
		}
	}
	if n == 0 {
		return 0, badRequest("invalid_prompt", "messages have no content")
	}
	return n, nil
}
