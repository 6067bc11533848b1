package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// body is one streaming request asking for exactly output tokens
// (ignore_eos, vLLM's sampling parameter: a server that could stop early
// must not).
func (g *Generator) body(model, prompt string, output int) []byte {
	req := map[string]any{
		"model": model, "max_tokens": output, "stream": true, "ignore_eos": true,
		"stream_options": map[string]bool{"include_usage": true},
	}
	if g.o.Chat {
		req["messages"] = []map[string]string{{"role": "user", "content": prompt}}
	} else {
		req["prompt"] = prompt
	}
	b, _ := json.Marshal(req) // maps of strings and numbers always marshal
	return b
}

// send runs one request and reads its event stream to the end.
func (g *Generator) send(ctx context.Context, body []byte) Record {
	ctx, cancel := context.WithTimeout(ctx, g.o.Timeout)
	defer cancel()
	rec := Record{Start: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.o.URL+g.path, bytes.NewReader(body))
	if err != nil {
		rec.Err = err.Error()
		return rec
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.client.Do(req)
	if err != nil {
		rec.Latency, rec.Err = time.Since(rec.Start), fmt.Sprintf("request: %v", err)
		return rec
	}
	defer resp.Body.Close()
	rec.Status, rec.ServedBy, rec.Upstream = resp.StatusCode, resp.Header.Get("X-Served-By"), resp.Header.Get("X-Gateway-Upstream")
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		rec.Latency, rec.Err = time.Since(rec.Start), fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		return rec
	}
	err = readStream(resp.Body, &rec)
	rec.Latency = time.Since(rec.Start)
	if err != nil {
		rec.Err = err.Error()
	}
	return rec
}

// chunk is the part of a streamed completion chunk the client reads.
type chunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var errNoDone = errors.New("stream ended before [DONE]")

// readStream reads server-sent events until [DONE], noting the first
// token's arrival and the completion tokens from the usage chunk.
func readStream(r io.Reader, rec *Record) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		if bytes.Equal(line, []byte("[DONE]")) {
			if rec.OutputTokens == 0 {
				return errors.New("stream carried no usage")
			}
			return nil
		}
		var c chunk
		if err := json.Unmarshal(line, &c); err != nil {
			return fmt.Errorf("bad event: %w", err)
		}
		if c.Error != nil {
			return fmt.Errorf("server error event: %s", c.Error.Message)
		}
		if rec.TTFT == 0 && len(c.Choices) > 0 && (c.Choices[0].Text != "" || c.Choices[0].Delta.Content != "") {
			rec.TTFT = time.Since(rec.Start)
		}
		if c.Usage != nil {
			rec.OutputTokens = c.Usage.CompletionTokens
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading stream: %w", err)
	}
	return errNoDone
}
