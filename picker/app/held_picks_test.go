package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// TestHeldPicksExpire reproduces the held-pick attack the issue measured
// (1,000 header-only picks held open on one of three endpoints took its
// share of well-behaved requests from 37 % to 0 % for as long as they were
// held) against the whole picker, with a short --extproc.response-timeout:
// while the picks are held the endpoint gets nothing, once they expire its
// in-flight count is back to zero and it gets its share again, and the
// expiries show on /metrics.
func TestHeldPicksExpire(t *testing.T) {
	t.Parallel()
	const held, target = 300, "10.0.0.1:8000"
	p := startTestPicker(t, func(o *Options) {
		o.Pool.Endpoints = "10.0.0.1:8000,10.0.0.2:8000,10.0.0.3:8000"
		o.ExtProc.ResponseTimeout = 10 * time.Second
	})
	kv := 0.2
	r := &telemetryv1.NodeReport{Node: "gpu-1", AgentInstance: "a", Sequence: 1,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Minute)}
	for i := range 3 {
		r.Pods = append(r.Pods, &telemetryv1.Pod{Name: fmt.Sprintf("vllm-%d", i), Ip: fmt.Sprintf("10.0.0.%d", i+1),
			ModelServer: &telemetryv1.ModelServer{Engine: "vllm", RunningRequests: 4, KvCacheUsage: &kv}})
	}
	sendReport(t, p, r)
	ext := extprocv3.NewExternalProcessorClient(dialGateway(t, p.ExtProcAddr().String()))

	// The attack: header-only requests pinned to one endpoint by the subset
	// hint, routed, and never answered.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range held {
		st, err := ext.Process(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hint, _ := structpb.NewStruct(map[string]any{"x-gateway-destination-endpoint-subset": []any{target}})
		if err := st.Send(&extprocv3.ProcessingRequest{
			Request:         &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":method", RawValue: []byte("GET")}, {Key: "x-gateway-model-name", RawValue: []byte("llama")}}}, EndOfStream: true}},
			MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.lb.subset_hint": hint}},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	tracker := p.route.router.picker.Tracker()
	if n := tracker.InFlight(target); n < held {
		t.Fatalf("%d in flight on the target after the attack, want %d", n, held)
	}
	if got := metric(t, p, `headroom_picker_endpoint_inflight{endpoint="10.0.0.1:8000"}`); got != fmt.Sprint(held) {
		t.Errorf("in-flight gauge of the target %q while held, want %d", got, held)
	}
	if share := shareOf(t, ext, target, 30); share != 0 {
		t.Errorf("while %d picks are held the target got %.0f%% of requests, want 0", held, 100*share)
	}

	deadline := time.Now().Add(patience)
	for tracker.InFlight(target) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("in-flight on the target still %d after the response timeout", tracker.InFlight(target))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := metric(t, p, `headroom_picker_endpoint_inflight{endpoint="10.0.0.1:8000"}`); got != "0" {
		t.Errorf("in-flight gauge of the target %q after expiry, want 0", got)
	}
	if share := shareOf(t, ext, target, 30); share < 0.15 {
		t.Errorf("after the held picks expired the target got %.0f%% of requests, want about a third", 100*share)
	}
	if got := metric(t, p, `headroom_picker_extproc_expired_total{phase="awaiting_response_headers"}`); got != fmt.Sprint(held) {
		t.Errorf("expired awaiting_response_headers %s, want %d", got, held)
	}
}

// patience bounds waits for what must happen; nothing asserts a duration.
const patience = 60 * time.Second

// shareOf routes n well-behaved requests one after another, each answered
// at once with 204, and returns the share whose destination was target.
// (A 204 trains no speed: loopback timings of a few microseconds would
// make the speed scorer, not the in-flight accounting, decide the share.)
func shareOf(t *testing.T, ext extprocv3.ExternalProcessorClient, target string, n int) float64 {
	t.Helper()
	hits := 0
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		st, err := ext.Process(ctx)
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(`{"model":"llama","prompt":"hi"}`)
		hdrs := []*corev3.HeaderValue{{Key: ":method", RawValue: []byte("POST")}, {Key: "content-type", RawValue: []byte("application/json")}}
		for _, m := range []*extprocv3.ProcessingRequest{
			{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hdrs}}}},
			{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}},
		} {
			if err := st.Send(m); err != nil {
				t.Fatal(err)
			}
		}
		var dest string
		for eos := false; !eos; {
			r, err := st.Recv()
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range r.GetRequestHeaders().GetResponse().GetHeaderMutation().GetSetHeaders() {
				if h.GetHeader().GetKey() == "x-gateway-destination-endpoint" {
					dest = string(h.GetHeader().GetRawValue())
				}
			}
			eos = r.GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse().GetEndOfStream()
		}
		if err := st.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{
			Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":status", RawValue: []byte("204")}}}, EndOfStream: true}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); err != nil {
			t.Fatal(err)
		}
		_ = st.CloseSend()
		_, _ = st.Recv()
		cancel()
		if strings.HasPrefix(dest, target) {
			hits++
		}
	}
	return float64(hits) / float64(n)
}

// metric returns one series' value off /metrics, as text.
func metric(t *testing.T, p *Picker, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + p.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}
