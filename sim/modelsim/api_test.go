package modelsim

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wire is a response or chunk as a client decodes it.
type wire struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text    *string `json:"text"`
		Message *struct {
			Role, Content string
		} `json:"message"`
		Delta *struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *usage `json:"usage"`
	Error *struct {
		Message, Type, Code string
	} `json:"error"`
}

func decode(t *testing.T, data string) wire {
	t.Helper()
	var w wire
	if err := json.Unmarshal([]byte(data), &w); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
	return w
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	ts := start(t, nil, true)
	tests := []struct {
		name      string
		path      string
		body      map[string]any
		prompt    int
		output    int
		wantUsage bool // streams: a usage chunk
	}{
		{"completion", "/v1/completions", map[string]any{"model": "m", "prompt": promptOf(10), "max_tokens": 7}, 10, 7, false},
		{"completion default max_tokens", "/v1/completions", map[string]any{"prompt": "hello"}, 2, DefaultMaxTokens, false},
		{"completion prompt array", "/v1/completions", map[string]any{"prompt": []string{promptOf(3), promptOf(4)}, "max_tokens": 3}, 7, 3, false},
		{"completion token ids", "/v1/completions", map[string]any{"prompt": []int{1, 2, 3, 4, 5}, "max_tokens": 3}, 5, 3, false},
		{"chat", "/v1/chat/completions", map[string]any{"model": "m", "max_tokens": 9,
			"messages": []map[string]string{{"role": "system", "content": promptOf(4)}, {"role": "user", "content": promptOf(6)}}}, 10, 9, false},
		{"chat max_completion_tokens wins", "/v1/chat/completions", map[string]any{"max_tokens": 9, "max_completion_tokens": 4,
			"messages": []map[string]any{{"role": "user", "content": []map[string]string{{"type": "text", "text": promptOf(5)}}}}}, 5, 4, false},
		{"stream completion", "/v1/completions", map[string]any{"prompt": promptOf(12), "max_tokens": 40, "stream": true,
			"stream_options": map[string]bool{"include_usage": true}}, 12, 40, true},
		{"stream chat", "/v1/chat/completions", map[string]any{"max_tokens": 40, "stream": true,
			"messages": []map[string]string{{"role": "user", "content": promptOf(8)}}}, 8, 40, false},
		{"stream chat with usage, one token", "/v1/chat/completions", map[string]any{"max_tokens": 1, "stream": true,
			"stream_options": map[string]bool{"include_usage": true},
			"messages":       []map[string]string{{"role": "user", "content": promptOf(8)}}}, 8, 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			chat := strings.Contains(tc.path, "chat")
			if tc.body["stream"] == true {
				checkStream(t, ts, tc.path, tc.body, chat, tc.prompt, tc.output, tc.wantUsage)
				return
			}
			resp, data := post(t, ts.URL+tc.path, tc.body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Served-By") != "sim-0" {
				t.Fatalf("status %d, X-Served-By %q: %s", resp.StatusCode, resp.Header.Get("X-Served-By"), data)
			}
			w := decode(t, string(data))
			if w.Usage == nil || *w.Usage != (usage{tc.prompt, tc.output, tc.prompt + tc.output}) {
				t.Errorf("usage = %+v, want prompt %d completion %d", w.Usage, tc.prompt, tc.output)
			}
			if len(w.Choices) != 1 || w.Choices[0].FinishReason == nil || *w.Choices[0].FinishReason != "length" {
				t.Fatalf("choices = %s", data)
			}
			var text string
			if chat {
				text = w.Choices[0].Message.Content
				if w.Object != "chat.completion" || w.Choices[0].Message.Role != "assistant" {
					t.Errorf("chat response shape: %s", data)
				}
			} else {
				text = *w.Choices[0].Text
				if w.Object != "text_completion" {
					t.Errorf("object = %q", w.Object)
				}
			}
			if got := len(strings.Fields(text)); got != tc.output {
				t.Errorf("text has %d tokens, want %d", got, tc.output)
			}
		})
	}
}

// checkStream runs one streaming request and checks its events.
func checkStream(t *testing.T, ts *testServer, path string, body map[string]any, chat bool, prompt, output int, wantUsage bool) {
	t.Helper()
	res, err := stream(context.Background(), ts.URL+path, body)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if ct := res.resp.Header.Get("Content-Type"); ct != "text/event-stream" || res.resp.Header.Get("X-Served-By") != "sim-0" {
		t.Fatalf("Content-Type %q, X-Served-By %q", ct, res.resp.Header.Get("X-Served-By"))
	}
	evs := res.events
	if len(evs) < 3 || evs[len(evs)-1].data != "[DONE]" || !strings.HasSuffix(res.raw, "data: [DONE]\n\n") {
		t.Fatalf("stream does not end with [DONE]: %q", res.raw)
	}
	evs = evs[:len(evs)-1]
	if wantUsage {
		u := decode(t, evs[len(evs)-1].data)
		if len(u.Choices) != 0 || u.Usage == nil || *u.Usage != (usage{prompt, output, prompt + output}) {
			t.Errorf("usage chunk = %s", evs[len(evs)-1].data)
		}
		evs = evs[:len(evs)-1]
	}
	final := decode(t, evs[len(evs)-1].data)
	if len(final.Choices) != 1 || final.Choices[0].FinishReason == nil || *final.Choices[0].FinishReason != "length" {
		t.Errorf("final chunk = %s", evs[len(evs)-1].data)
	}
	tokens := 0
	for i, ev := range evs[:len(evs)-1] {
		c := decode(t, ev.data)
		if c.Usage != nil || c.Choices[0].FinishReason != nil {
			t.Errorf("chunk %d carries usage or a finish reason: %s", i, ev.data)
		}
		var text string
		if chat {
			if want := i == 0; (c.Choices[0].Delta.Role == "assistant") != want {
				t.Errorf("chunk %d role %q", i, c.Choices[0].Delta.Role)
			}
			text = *c.Choices[0].Delta.Content
		} else {
			text = *c.Choices[0].Text
		}
		tokens += len(strings.Fields(text))
	}
	if tokens != output {
		t.Errorf("streamed %d tokens, want %d", tokens, output)
	}
	// 40 tokens at 5+ ms each take 200 ms; flushed every 20 ms they
	// arrive several to a chunk.
	if content := len(evs) - 1; output > 1 && content >= output {
		t.Errorf("%d content chunks for %d tokens: want several tokens a chunk", content, output)
	}
}

func TestModelsAndHealth(t *testing.T) {
	t.Parallel()
	ts := start(t, nil, true)
	resp, data, err := call(context.Background(), http.MethodGet, ts.URL+"/v1/models", nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("models: %v %v", err, resp)
	}
	var models struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &models); err != nil || len(models.Data) != 1 || models.Data[0].ID != "m" {
		t.Errorf("models = %s (%v)", data, err)
	}
	for path, want := range map[string]int{"/health": http.StatusOK, "/nope": http.StatusNotFound} {
		resp, _, err := call(context.Background(), http.MethodGet, ts.URL+path, nil)
		if err != nil || resp.StatusCode != want || resp.Header.Get("X-Served-By") != "sim-0" {
			t.Errorf("GET %s: %v, status %v, want %d with X-Served-By", path, err, resp.StatusCode, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ts := start(t, func(o *Options) { o.Profile.KVCacheTokens = 1000 }, true)
	big := `{"prompt": "` + strings.Repeat("x", MaxBodyBytes) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"bad json", "POST", "/v1/completions", `{"prompt": `, 400, "invalid_json"},
		{"wrong type", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": "ten"}`, 400, "invalid_json"},
		{"missing prompt", "POST", "/v1/completions", `{"max_tokens": 3}`, 400, "missing_prompt"},
		{"empty prompt", "POST", "/v1/completions", `{"prompt": ""}`, 400, "invalid_prompt"},
		{"prompt object", "POST", "/v1/completions", `{"prompt": {"a": 1}}`, 400, "invalid_prompt"},
		{"missing messages", "POST", "/v1/chat/completions", `{"prompt": "x"}`, 400, "missing_messages"},
		{"bad content", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": 3}]}`, 400, "invalid_content"},
		{"max_tokens zero", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": 0}`, 400, "invalid_value"},
		{"max_tokens negative", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}`, 400, "invalid_value"},
		{"max_tokens too large", "POST", "/v1/completions", `{"prompt": "x", "max_tokens": 4097}`, 400, "invalid_value"},
		{"context length", "POST", "/v1/completions", `{"prompt": "` + promptOf(990) + `", "max_tokens": 11}`, 400, "context_length_exceeded"},
		{"wrong model", "POST", "/v1/completions", `{"model": "other", "prompt": "x"}`, 404, "model_not_found"},
		{"GET completions", "GET", "/v1/completions", "", 405, "method_not_allowed"},
		{"PUT chat", "PUT", "/v1/chat/completions", `{}`, 405, "method_not_allowed"},
		{"body too large", "POST", "/v1/completions", big, 413, "request_too_large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body any
			if tc.body != "" {
				body = tc.body
			}
			resp, data, err := call(context.Background(), tc.method, ts.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			checkError(t, resp, data, tc.status, tc.code)
		})
	}
	// Unknown fields are allowed.
	resp, data := post(t, ts.URL+"/v1/completions", `{"prompt": "x", "max_tokens": 2, "temperature": 0.5, "ignore_eos": true}`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("unknown fields: status %d: %s", resp.StatusCode, data)
	}
}

// checkError checks an OpenAI-style error response.
func checkError(t *testing.T, resp *http.Response, data []byte, status int, code string) {
	t.Helper()
	var e struct {
		Error *struct {
			Message, Type, Code string
		} `json:"error"`
	}
	if resp.StatusCode != status || json.Unmarshal(data, &e) != nil || e.Error == nil {
		t.Fatalf("status %d, body %s; want %d with an error object", resp.StatusCode, data, status)
	}
	if e.Error.Code != code || e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("error = %+v, want code %q and a message and type", *e.Error, code)
	}
	if resp.Header.Get("X-Served-By") != "sim-0" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", resp.Header)
	}
}

func TestQueueFull(t *testing.T) {
	t.Parallel()
	// Not running: requests stay in the queue.
	ts := start(t, func(o *Options) { o.MaxWaiting = 1 }, false)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, _, err := call(ctx, http.MethodPost, ts.URL+"/v1/completions", `{"prompt": "x"}`)
		first <- err
	}()
	waitFor(t, "the first request to queue", func() bool { return ts.Stats().Waiting == 1 })
	resp, data := post(t, ts.URL+"/v1/completions", `{"prompt": "x"}`)
	checkError(t, resp, data, http.StatusServiceUnavailable, "queue_full")
	cancel()
	<-first
	waitFor(t, "the cancelled request to leave", func() bool { st := ts.Stats(); return st.Waiting == 0 && st.Failed == 1 })
}

func TestStreamHeadersBeforeFirstToken(t *testing.T) {
	t.Parallel()
	// Not running: the request waits, yet its stream has begun.
	ts := start(t, nil, false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/v1/completions", strings.NewReader(`{"prompt": "x", "stream": true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
