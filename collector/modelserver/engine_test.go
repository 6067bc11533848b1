package modelserver

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/headroom-dev/headroom/snapshot"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureStats are the stats each fixture holds, worked out by hand.
var fixtureStats = []struct {
	file   string
	engine Engine
	want   snapshot.ModelServerStats
}{
	// Two data-parallel engines: counts summed, KV the fuller one; LoRA
	// from the newest series, which is not the last one listed.
	{"vllm.prom", VLLM, snapshot.ModelServerStats{Waiting: 5, Running: 21, KVCacheUsage: 0.63, HasKVCacheUsage: true,
		LoRA: &snapshot.LoRAState{Running: []string{"sql-lora", "chat-lora"}, Waiting: []string{"summarize"}, MaxAdapters: 4},
		// Latency: both engines' _sum and _count, the newer inter-token
		// name, and the request stages.
		Latency: &snapshot.LatencyTotals{TTFTSum: add(9715.013887, 5785.808282), TTFTCount: 7052,
			TPOTSum: add(5213.657083, 2735.676526), TPOTCount: 9730,
			QueueSum: add(17847.741507, 11405.899152), QueueCount: 8719 + 8405,
			PrefillSum: add(19689.892632, 1190.065040), PrefillCount: 8014 + 4737,
			InferenceSum: add(19595.264685, 177.099816), InferenceCount: 8332 + 3030,
			PromptTokensSum: add(1216.532202, 614.005935), PromptTokensCount: 5805 + 1986},
		// Output tokens: both engines' counters summed.
		GenerationTokens: 311444, HasGenerationTokens: true}},
	// llm-d-inference-sim v0.10.2 under load (the routing benchmark's
	// server): every stage histogram; of two LoRA series equally new,
	// the first listed.
	{"llmd-sim.prom", VLLM, snapshot.ModelServerStats{Waiting: 17, Running: 4, KVCacheUsage: 0.0107421875, HasKVCacheUsage: true,
		LoRA: &snapshot.LoRAState{Running: []string{"chat", "sql"}, Waiting: []string{"chat", "sql"}, MaxAdapters: 2},
		Latency: &snapshot.LatencyTotals{TTFTSum: 0.29700000000000004, TTFTCount: 11, TPOTSum: 2.629999999999988, TPOTCount: 263,
			QueueSum: 1.1998219639999999, QueueCount: 4, PrefillSum: 0.48732568699999995, PrefillCount: 11,
			InferenceSum: 3.8659013089999994, InferenceCount: 7, PromptTokensSum: 203, PromptTokensCount: 7},
		GenerationTokens: 145, HasGenerationTokens: true}},
	// Older vLLM: gpu_cache_usage_perc; LoRA off (max_lora 0).
	// Its fixture has the TTFT histogram only.
	{"vllm-v0.prom", VLLM, snapshot.ModelServerStats{Waiting: 1, Running: 7, KVCacheUsage: 0.275, HasKVCacheUsage: true,
		Latency: &snapshot.LatencyTotals{TTFTSum: 11980.099073, TTFTCount: 6342}}},
	{"sglang.prom", SGLang, snapshot.ModelServerStats{Waiting: 7, Running: 30, KVCacheUsage: 0.82, HasKVCacheUsage: true,
		Latency:          &snapshot.LatencyTotals{TTFTSum: 3213.046131, TTFTCount: 1884, TPOTSum: 210.455073, TPOTCount: 763},
		GenerationTokens: 1.2e6, HasGenerationTokens: true}},
	{"trtllm.prom", TRTLLM, snapshot.ModelServerStats{Waiting: 4, Running: 16, KVCacheUsage: 0.55, HasKVCacheUsage: true}},
	// Two TensorRT-LLM models: waiting 6+1, scheduled 10+3, KV max.
	{"triton.prom", Triton, snapshot.ModelServerStats{Waiting: 7, Running: 13, KVCacheUsage: 0.72, HasKVCacheUsage: true}},
}

// fixtureFor returns the stats of a fixture of fixtureStats.
func fixtureFor(t *testing.T, file string) snapshot.ModelServerStats {
	t.Helper()
	for _, tc := range fixtureStats {
		if tc.file == file {
			return tc.want
		}
	}
	t.Fatalf("no fixture %s", file)
	return snapshot.ModelServerStats{}
}

// add sums in order from 0, as the parser does, so results compare exactly.
func add(xs ...float64) float64 {
	var t float64
	for _, x := range xs {
		t += x
	}
	return t
}

func TestParseFixtures(t *testing.T) {
	t.Parallel()
	for _, tc := range fixtureStats {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			body := fixture(t, tc.file)
			// The fixture is valid exposition as a whole, not only the
			// lines the filter keeps.
			tp := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := tp.TextToMetricFamilies(bytes.NewReader(body)); err != nil {
				t.Fatalf("fixture is not valid exposition: %v", err)
			}
			got, err := newParser().parse(tc.engine, body, "text/plain; version=0.0.4; charset=utf-8")
			if err != nil {
				t.Fatal(err)
			}
			sameAsReference(t, tc.engine, body, got, err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("stats = %+v (LoRA %+v, latency %+v), want %+v (LoRA %+v, latency %+v)", got, got.LoRA, got.Latency, tc.want, tc.want.LoRA, tc.want.Latency)
			}
		})
	}
}

// TestParseWrongEngine reads a body with another engine's dialect: no
// known metrics, not zeros.
func TestParseWrongEngine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		body   string
		engine Engine
	}{
		{"sglang body read as vllm", string(fixture(t, "sglang.prom")), VLLM},
		{"vllm body read as triton", string(fixture(t, "vllm.prom")), Triton},
		{"html", "<html><body>502 Bad Gateway</body></html>", VLLM},
		{"empty", "", SGLang},
		{"json iteration stats", `[{"numActiveRequests": 3}]`, TRTLLM},
		{"triton without waiting or scheduled", "nv_trt_llm_request_metrics{request_type=\"max\"} 512\n", Triton},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newParser().parse(tc.engine, []byte(tc.body), "text/plain")
			if !errors.Is(err, ErrNoMetrics) {
				t.Errorf("err = %v, want ErrNoMetrics", err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body string }{
		{"unterminated label value", "vllm:num_requests_waiting{model_name=\"x} 3\n"},
		{"value not a number", "vllm:num_requests_running{model_name=\"x\"} many\n"},
		{"type clash", "# TYPE vllm:num_requests_waiting gauge\n# TYPE vllm:num_requests_waiting counter\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newParser().parse(VLLM, []byte(tc.body), "text/plain")
			if err == nil || errors.Is(err, ErrNoMetrics) {
				t.Errorf("err = %v, want a parse error", err)
			}
		})
	}
}

// TestParseProtobuf decodes a server that answers delimited protobuf.
func TestParseProtobuf(t *testing.T) {
	t.Parallel()
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(bytes.NewReader(fixture(t, "sglang.prom")))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	got, err := newParser().parse(SGLang, buf.Bytes(), string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	if err != nil {
		t.Fatal(err)
	}
	if want := fixtureFor(t, "sglang.prom"); !reflect.DeepEqual(got, want) {
		t.Errorf("stats = %+v, want %+v", got, want)
	}
}

// TestParseOpenMetrics reads OpenMetrics 1.0 (what prometheus_client
// sends when asked for it): the gauge lines are the same, # EOF ends it.
func TestParseOpenMetrics(t *testing.T) {
	t.Parallel()
	body := "# HELP sglang:num_queue_reqs The number of requests in the waiting queue.\n" +
		"# TYPE sglang:num_queue_reqs gauge\n# UNIT sglang:num_queue_reqs requests\n" +
		"sglang:num_queue_reqs{model_name=\"m\"} 2.0\n" +
		"sglang:num_running_reqs{model_name=\"m\"} 5.0\n# EOF\n"
	got, err := newParser().parse(SGLang, []byte(body), "application/openmetrics-text; version=1.0.0; charset=utf-8")
	if err != nil {
		t.Fatal(err)
	}
	if got.Waiting != 2 || got.Running != 5 || got.HasKVCacheUsage {
		t.Errorf("stats = %+v", got)
	}
}

func TestFilterLines(t *testing.T) {
	t.Parallel()
	body := "# HELP a_total x\n# TYPE a_total counter\na_total 1\n" +
		"  # TYPE keep gauge\n#HELP keep with no space\nkeep{l=\"v\"} 2\nkeep 3\nkeeper 4\n# a comment about keep\n\tkeep\t5\nkeep 6"
	got := string(filterLines(nil, []byte(body), []string{"keep"}, nil))
	want := "  # TYPE keep gauge\n#HELP keep with no space\nkeep{l=\"v\"} 2\nkeep 3\n\tkeep\t5\nkeep 6\n"
	if got != want {
		t.Errorf("filtered:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseEngine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Engine{
		"vllm": VLLM, "SGLang": SGLang, "trtllm": TRTLLM, "trtllm-serve": TRTLLM,
		"triton": Triton, "triton-tensorrt-llm": Triton, "tgi": "", "": "",
	} {
		got, ok := ParseEngine(in)
		if got != want || ok != (want != "") {
			t.Errorf("ParseEngine(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if !strings.HasSuffix(TRTLLM.DefaultPath(), "/prometheus/metrics") || VLLM.DefaultPath() != "/metrics" {
		t.Error("default paths")
	}
}
