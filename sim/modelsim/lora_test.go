package modelsim

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLoRABatchLimit checks max-loras: with one adapter per batch, a
// request for a second adapter waits until the first adapter's request is
// done, while a base-model request behind it starts at once; an adapter
// the server does not serve is 404; the lora_requests_info series lists
// the adapters running and waiting.
func TestLoRABatchLimit(t *testing.T) {
	t.Parallel()
	ts := start(t, func(o *Options) { o.LoRAs, o.MaxLoRAs = []string{"sql", "chat"}, 1 }, true)
	url := ts.URL + "/v1/completions"
	req := func(model string, tokens int) map[string]any {
		return map[string]any{"model": model, "prompt": promptOf(8), "max_tokens": tokens, "stream": true}
	}
	type res struct {
		model string
		r     streamResult
		err   error
	}
	out := make(chan res, 3)
	go func() { r, err := stream(context.Background(), url, req("sql", 60)); out <- res{"sql", r, err} }() // about 0.4 s
	waitFor(t, "the sql request running", func() bool { return ts.Stats().Running == 1 })
	go func() { r, err := stream(context.Background(), url, req("chat", 2)); out <- res{"chat", r, err} }()
	waitFor(t, "the chat request waiting", func() bool { return ts.Stats().Waiting == 1 })
	_, body, err := call(context.Background(), http.MethodGet, ts.URL+"/metrics", nil)
	if err != nil || !strings.Contains(string(body), `vllm:lora_requests_info{max_lora="1",model_name="m",running_lora_adapters="sql",waiting_lora_adapters="chat"}`) {
		t.Errorf("lora_requests_info while sql runs and chat waits: %v\n%s", err, body)
	}
	go func() { r, err := stream(context.Background(), url, req("m", 2)); out <- res{"m", r, err} }()
	got := map[string]res{}
	for range 3 {
		r := <-out
		if r.err != nil {
			t.Fatalf("%s: %v", r.model, r.err)
		}
		got[r.model] = r
	}
	end := func(r streamResult) time.Time { return r.events[len(r.events)-1].at }
	if !got["chat"].r.events[0].at.After(end(got["sql"].r).Add(-20 * time.Millisecond)) {
		t.Errorf("the chat adapter's first token came before the sql request ended")
	}
	if !got["m"].r.events[0].at.Before(end(got["sql"].r)) {
		t.Errorf("the base-model request waited behind the blocked adapter request")
	}
	resp, _ := post(t, url, map[string]any{"model": "summarise", "prompt": "x", "max_tokens": 1})
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("an adapter the server lacks: status %d, want 404", resp.StatusCode)
	}
}

func TestLoRAOptions(t *testing.T) {
	t.Parallel()
	for name, edit := range map[string]func(*Options){
		"empty name":        func(o *Options) { o.LoRAs = []string{""} },
		"the model's name":  func(o *Options) { o.LoRAs = []string{"m"} },
		"negative max-lora": func(o *Options) { o.LoRAs, o.MaxLoRAs = []string{"a"}, -1 },
	} {
		t.Run(name, func(t *testing.T) {
			o := Options{Name: "s", Model: "m", Profile: fastProfile()}
			edit(&o)
			if o.Validate() == nil {
				t.Errorf("%+v validated", o)
			}
		})
	}
}
