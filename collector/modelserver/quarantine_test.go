package modelserver

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

// A server that serves an impossible value loses only that value: the
// others of the same scrape are kept, and no impossible value reaches the
// reading (and so the report, which the picker would have refused whole).
func TestParseDropsImpossibleValues(t *testing.T) {
	t.Parallel()
	lines := func(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
	tests := []struct {
		name string
		body string
		want snapshot.ModelServerStats
	}{
		{"negative queue", lines(
			`vllm:num_requests_waiting{model_name="m"} -1`,
			`vllm:num_requests_running{model_name="m"} 3`,
			`vllm:kv_cache_usage_perc{model_name="m"} 0.4`,
		), snapshot.ModelServerStats{Running: 3, KVCacheUsage: 0.4, HasKVCacheUsage: true}},
		{"one negative engine of two", lines(
			`vllm:num_requests_waiting{engine="0"} -4`,
			`vllm:num_requests_waiting{engine="1"} 2`,
			`vllm:num_requests_running{engine="0"} 1`,
		), snapshot.ModelServerStats{Waiting: 2, Running: 1}},
		{"KV usage above 1", lines(
			`vllm:num_requests_waiting 1`,
			`vllm:kv_cache_usage_perc 1.5`,
		), snapshot.ModelServerStats{Waiting: 1}},
		{"KV usage within rounding of 1", lines(
			`vllm:num_requests_waiting 1`,
			`vllm:kv_cache_usage_perc 1.0004`,
		), snapshot.ModelServerStats{Waiting: 1, KVCacheUsage: 1, HasKVCacheUsage: true}},
		{"KV usage negative, another in range", lines(
			`vllm:num_requests_waiting 1`,
			`vllm:kv_cache_usage_perc{engine="0"} -0.2`,
			`vllm:kv_cache_usage_perc{engine="1"} 0.3`,
		), snapshot.ModelServerStats{Waiting: 1, KVCacheUsage: 0.3, HasKVCacheUsage: true}},
		{"values summing to +Inf", lines(
			`vllm:num_requests_waiting{engine="0"} 1e308`,
			`vllm:num_requests_waiting{engine="1"} 1e308`,
			`vllm:num_requests_running 2`,
		), snapshot.ModelServerStats{Running: 2}},
		{"NaN and +Inf samples", lines(
			`vllm:num_requests_waiting NaN`,
			`vllm:num_requests_running +Inf`,
			`vllm:num_requests_running{engine="1"} 4`,
		), snapshot.ModelServerStats{Running: 4}},
		{"negative latency total", lines(
			`vllm:num_requests_waiting 0`,
			`vllm:time_to_first_token_seconds_sum -5`,
			`vllm:time_to_first_token_seconds_count 10`,
		), snapshot.ModelServerStats{}},
		{"Triton negative waiting", lines(
			`nv_trt_llm_request_metrics{model="m",request_type="waiting"} -2`,
			`nv_trt_llm_request_metrics{model="m",request_type="scheduled"} 5`,
		), snapshot.ModelServerStats{Running: 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			engine := VLLM
			if strings.HasPrefix(tc.body, "nv_trt") {
				engine = Triton
			}
			got, err := newParser().parse(engine, []byte(tc.body), "text/plain")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("stats %+v, want %+v", got, tc.want)
			}
		})
	}
}

// LoRA lists are capped at the report contract's limits: a list past it
// keeps its first names, an over-long name is left out.
func TestParseCapsLoRA(t *testing.T) {
	t.Parallel()
	var many []string
	for i := range telemetryv1.MaxLoRAAdapters + 10 {
		many = append(many, fmt.Sprintf("a%d", i))
	}
	long := strings.Repeat("x", telemetryv1.MaxLoRANameBytes+1)
	body := `vllm:num_requests_waiting 0` + "\n" +
		`vllm:lora_requests_info{max_lora="4",running_lora_adapters="ok,` + long + `",waiting_lora_adapters="` + strings.Join(many, ",") + `"} 1.7e9` + "\n"
	p := newParser()
	got, err := p.parse(VLLM, []byte(body), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	l := got.LoRA
	if l == nil || !reflect.DeepEqual(l.Running, []string{"ok"}) || !reflect.DeepEqual(l.Waiting, many[:telemetryv1.MaxLoRAAdapters]) {
		t.Fatalf("LoRA %+v", l)
	}
	if want := (dropCounts{dropLoRAName: 1, dropLoRATruncated: 1}); p.dropped != want {
		t.Fatalf("dropped %v, want %v", p.dropped, want)
	}
}

// Each dropped value is counted by reason.
func TestParseCountsDrops(t *testing.T) {
	t.Parallel()
	body := "vllm:num_requests_waiting{engine=\"0\"} -1\nvllm:num_requests_waiting{engine=\"1\"} NaN\n" +
		"vllm:num_requests_running 1e308\nvllm:num_requests_running{engine=\"1\"} 1e308\n" +
		"vllm:kv_cache_usage_perc 7\n"
	p := newParser()
	if _, err := p.parse(VLLM, []byte(body), "text/plain"); err == nil {
		t.Fatal("a scrape with no usable queue metric succeeded")
	}
	want := dropCounts{dropNegative: 1, dropNotFinite: 2, dropOutOfRange: 1}
	if p.dropped != want {
		t.Fatalf("dropped %v, want %v", p.dropped, want)
	}
	if _, err := p.parse(VLLM, []byte("vllm:num_requests_waiting 1\n"), "text/plain"); err != nil || p.dropped != (dropCounts{}) {
		t.Fatalf("a clean scrape: err %v, dropped %v", err, p.dropped)
	}
}

// A family with more series than the cap is left out whole (a sum over
// part of it would be wrong), and the parser stops copying its lines.
func TestParseSeriesCap(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("vllm:num_requests_running 3\n")
	for i := range MaxSeriesPerFamily + 1 {
		fmt.Fprintf(&b, "vllm:num_requests_waiting{id=\"%d\"} 1\n", i)
	}
	base := b.String()
	p := newParser()
	got, err := p.parse(VLLM, []byte(base), "text/plain")
	if err != nil {
		t.Fatal(err)
	}
	if got.Waiting != 0 || got.Running != 3 {
		t.Fatalf("stats %+v, want the waiting family left out", got)
	}
	if p.dropped != (dropCounts{dropTooManySeries: 1}) {
		t.Fatalf("dropped %v", p.dropped)
	}
	// The waiting family was kept up to one past the cap, no further.
	waiting := slices.Index(familiesOf(VLLM), vllmWaiting)
	kept := cap(p.samples[waiting])
	if kept < MaxSeriesPerFamily+1 || kept > 2*(MaxSeriesPerFamily+1) {
		t.Fatalf("room for %d samples after the family, want about %d", kept, MaxSeriesPerFamily+1)
	}
	// Many more lines of the family cost the parser no memory.
	b.WriteString(strings.Repeat("vllm:num_requests_waiting{id=\"x\"} 1\n", 10_000))
	if _, err := p.parse(VLLM, []byte(b.String()), "text/plain"); err != nil {
		t.Fatal(err)
	}
	if c := cap(p.samples[waiting]); c != kept {
		t.Fatalf("room for %d samples after 10,000 more lines, was %d", c, kept)
	}
	// At the cap it is kept.
	got, err = p.parse(VLLM, []byte(strings.Replace(base, "vllm:num_requests_waiting{id=\"0\"} 1\n", "", 1)), "text/plain")
	if err != nil || got.Waiting != MaxSeriesPerFamily {
		t.Fatalf("at the cap: %+v, %v", got, err)
	}
}
