package modelserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/headroom-dev/headroom/snapshot"
)

// Engine names a model server's metric dialect.
type Engine string

// The engines whose metrics the source reads.
const (
	VLLM   Engine = "vllm"
	SGLang Engine = "sglang"
	TRTLLM Engine = "trtllm" // trtllm-serve
	Triton Engine = "triton" // Triton Inference Server's TensorRT-LLM backend
)

// Engines lists the engines in documentation order.
func Engines() []Engine { return []Engine{VLLM, SGLang, TRTLLM, Triton} }

// ParseEngine maps an engine name to its Engine. Besides the four names it
// accepts the spellings of llm-d's engine-type label (trtllm-serve,
// triton-tensorrt-llm).
func ParseEngine(s string) (Engine, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "vllm":
		return VLLM, true
	case "sglang":
		return SGLang, true
	case "trtllm", "trtllm-serve", "tensorrt-llm":
		return TRTLLM, true
	case "triton", "triton-tensorrt-llm":
		return Triton, true
	}
	return "", false
}

// DefaultPath is the metrics path an engine serves when nothing says
// otherwise: trtllm-serve serves Prometheus text on /prometheus/metrics
// (its /metrics is JSON iteration stats), the others on /metrics.
func (e Engine) DefaultPath() string {
	if e == TRTLLM {
		return "/prometheus/metrics"
	}
	return "/metrics"
}

// Metric names by engine.
const (
	vllmWaiting   = "vllm:num_requests_waiting"
	vllmRunning   = "vllm:num_requests_running"
	vllmKV        = "vllm:kv_cache_usage_perc"
	vllmKVOld     = "vllm:gpu_cache_usage_perc"
	vllmLoRA      = "vllm:lora_requests_info"
	sglangWaiting = "sglang:num_queue_reqs"
	sglangRunning = "sglang:num_running_reqs"
	sglangKV      = "sglang:token_usage"
	trtWaiting    = "trtllm_num_requests_waiting"
	trtRunning    = "trtllm_num_requests_running"
	trtKV         = "trtllm_kv_cache_utilization"
	tritonReqs    = "nv_trt_llm_request_metrics"
	tritonKV      = "nv_trt_llm_kv_cache_block_metrics"

	// Histograms: only their _sum and _count samples are read.
	vllmTTFT      = "vllm:time_to_first_token_seconds"
	vllmITL       = "vllm:inter_token_latency_seconds"
	vllmTPOTOld   = "vllm:time_per_output_token_seconds"
	vllmQueue     = "vllm:request_queue_time_seconds"
	vllmPrefill   = "vllm:request_prefill_time_seconds"
	vllmInference = "vllm:request_inference_time_seconds"
	vllmPrompt    = "vllm:request_prompt_tokens"
	sglangTTFT    = "sglang:time_to_first_token_seconds"
	sglangITL     = "sglang:inter_token_latency_seconds"

	// Output tokens generated since the server started (counters). The
	// TensorRT-LLM servers export no such counter (trtllm-serve's five
	// metrics are request counts and latency histograms).
	vllmGenTokens   = "vllm:generation_tokens_total"
	sglangGenTokens = "sglang:generation_tokens_total"
)

// histogram lists the _sum and _count sample names of histograms.
func histogram(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, n+"_sum", n+"_count")
	}
	return out
}

// familiesOf are the sample names each engine's extraction reads; every
// other line of a response is skipped.
func familiesOf(e Engine) []string {
	switch e {
	case VLLM:
		return append([]string{vllmWaiting, vllmRunning, vllmKV, vllmKVOld, vllmLoRA, vllmGenTokens},
			histogram(vllmTTFT, vllmITL, vllmTPOTOld, vllmQueue, vllmPrefill, vllmInference, vllmPrompt)...)
	case SGLang:
		return append([]string{sglangWaiting, sglangRunning, sglangKV, sglangGenTokens}, histogram(sglangTTFT, sglangITL)...)
	case TRTLLM:
		return []string{trtWaiting, trtRunning, trtKV}
	case Triton:
		return []string{tritonReqs, tritonKV}
	}
	return nil
}

// ErrNoMetrics means a response held none of the engine's queue metrics:
// the wrong port, path or engine, or a server still starting.
var ErrNoMetrics = errors.New("no known metrics in response")

// parser parses one target's responses. It keeps its buffers between
// scrapes and must not be used concurrently (a target has at most one
// scrape in flight).
type parser struct {
	// want caches familiesOf per engine.
	want map[Engine][]string
	// samples[i] are the samples of want[i] of the last parse; seen its
	// HELP and TYPE lines (scan).
	samples [][]sample
	seen    []uint8
	// dropped counts the values the last parse left out.
	dropped dropCounts
}

func newParser() *parser { return &parser{want: map[Engine][]string{}} }

// parse extracts an engine's stats from a response body. contentType
// selects the decoder: delimited protobuf when the server sent it,
// otherwise the line scanner (Prometheus text and OpenMetrics 1.0, whose
// sample lines are the same).
func (p *parser) parse(e Engine, body []byte, contentType string) (snapshot.ModelServerStats, error) {
	want := p.want[e]
	if want == nil {
		if want = familiesOf(e); want == nil {
			return snapshot.ModelServerStats{}, fmt.Errorf("unknown engine %q", e)
		}
		p.want[e] = want
	}
	p.dropped = dropCounts{}
	var err error
	if isProto(contentType) {
		err = p.decodeProto(body, want)
	} else {
		err = p.scan(body, want)
	}
	if err != nil {
		return snapshot.ModelServerStats{}, fmt.Errorf("parse %s metrics: %w", e, err)
	}
	for i, ss := range p.samples {
		if len(ss) > MaxSeriesPerFamily {
			p.samples[i] = ss[:0]
			p.dropped.add(dropTooManySeries)
		}
	}
	return extract(e, fams{want, p.samples}, &p.dropped)
}

// fams gives the extraction the samples of each wanted name.
type fams struct {
	want    []string
	samples [][]sample
}

// get returns name's samples (nil when none).
func (f fams) get(name string) []sample {
	for i, w := range f.want {
		if w == name {
			return f.samples[i]
		}
	}
	return nil
}

// isProto reports a delimited protobuf response (checked by prefix first:
// parsing the content type allocates).
func isProto(contentType string) bool {
	return strings.HasPrefix(contentType, expfmt.ProtoType) &&
		expfmt.Format(contentType).FormatType() == expfmt.TypeProtoDelim
}

// decodeProto reads delimited protobuf families into p.samples: a gauge,
// counter or untyped family under its name, a histogram as its _sum and
// _count. A message may not claim to be longer than the body: a six-byte
// response declaring a 26 GB message would otherwise make the decoder
// allocate that much (expfmt's decoder sets no limit), and a model server
// could kill the node's agent.
func (p *parser) decodeProto(body []byte, want []string) error {
	p.resetSamples(len(want))
	r := bytes.NewReader(body)
	opts := protodelim.UnmarshalOptions{MaxSize: int64(len(body))}
	for {
		mf := &dto.MetricFamily{}
		err := opts.UnmarshalFrom(r, mf)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := p.addFamily(mf, want); err != nil {
			return err
		}
	}
}

// addFamily adds a decoded family's samples when want names it.
func (p *parser) addFamily(mf *dto.MetricFamily, want []string) error {
	name := mf.GetName()
	iv, is, ic := slices.Index(want, name), slices.Index(want, name+"_sum"), slices.Index(want, name+"_count")
	if iv < 0 && is < 0 && ic < 0 {
		return nil
	}
	if len(mf.GetMetric()) > MaxSeriesPerFamily {
		p.dropped.add(dropTooManySeries)
		return nil
	}
	if err := validLabels(mf); err != nil {
		return err
	}
	for _, m := range mf.GetMetric() {
		lb := renderLabels(m)
		if h := m.GetHistogram(); h != nil {
			if is >= 0 {
				p.samples[is] = append(p.samples[is], sample{lb, h.GetSampleSum()})
			}
			if ic >= 0 {
				p.samples[ic] = append(p.samples[ic], sample{lb, float64(h.GetSampleCount())})
			}
		} else if iv >= 0 {
			p.samples[iv] = append(p.samples[iv], sample{lb, value(m)})
		}
	}
	return nil
}

// renderLabels writes a protobuf sample's labels as the text format's
// pairs, for label to read.
func renderLabels(m *dto.Metric) []byte {
	var b []byte
	for i, l := range m.GetLabel() {
		if i > 0 {
			b = append(b, ',')
		}
		if model.LegacyValidation.IsValidLabelName(l.GetName()) {
			b = append(b, l.GetName()...)
		} else {
			b = appendQuoted(b, l.GetName())
		}
		b = append(b, '=')
		b = appendQuoted(b, l.GetValue())
	}
	return b
}

// validLabels refuses label names and values the text format could not
// carry, as the Prometheus decoders do.
func validLabels(mf *dto.MetricFamily) error {
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if !model.LabelValue(l.GetValue()).IsValid() {
				return fmt.Errorf("invalid label value %q", l.GetValue())
			}
			if !model.UTF8Validation.IsValidLabelName(l.GetName()) {
				return fmt.Errorf("invalid label name %q", l.GetName())
			}
		}
	}
	return nil
}

// wanted returns the index of name in want, or -1.
func wanted(name []byte, want []string) int {
	if len(name) == 0 {
		return -1
	}
	for i, w := range want {
		if string(name) == w {
			return i
		}
	}
	return -1
}

// extract turns an engine's samples into stats. Counts are summed over
// the series (several models or data-parallel engines on one server); KV
// usage is the fullest series. Impossible values are left out and counted
// in d.
func extract(e Engine, f fams, d *dropCounts) (snapshot.ModelServerStats, error) {
	var st snapshot.ModelServerStats
	var found bool
	switch e {
	case VLLM:
		found = fill(&st, f.get(vllmWaiting), f.get(vllmRunning), f.get(vllmKV), d)
		if !st.HasKVCacheUsage {
			st.KVCacheUsage, st.HasKVCacheUsage = fullest(f.get(vllmKVOld), nil, d)
		}
		st.LoRA = loraState(f.get(vllmLoRA), d)
		st.Latency = latency(f, d, vllmTTFT, vllmITL, vllmTPOTOld)
		if st.Latency != nil {
			stages(st.Latency, f, d)
		}
		st.GenerationTokens, st.HasGenerationTokens = sumAll(f.get(vllmGenTokens), d)
	case SGLang:
		found = fill(&st, f.get(sglangWaiting), f.get(sglangRunning), f.get(sglangKV), d)
		st.Latency = latency(f, d, sglangTTFT, sglangITL, "")
		st.GenerationTokens, st.HasGenerationTokens = sumAll(f.get(sglangGenTokens), d)
	case TRTLLM:
		found = fill(&st, f.get(trtWaiting), f.get(trtRunning), f.get(trtKV), d)
	case Triton:
		found = fillTriton(&st, f, d)
	}
	if !found {
		return st, fmt.Errorf("%s: %w", e, ErrNoMetrics)
	}
	return st, nil
}

// fill reads the common waiting/running/KV shape.
func fill(st *snapshot.ModelServerStats, waiting, running, kv []sample, d *dropCounts) bool {
	var w, r bool
	st.Waiting, w = sum(waiting, nil, d)
	st.Running, r = sum(running, nil, d)
	st.KVCacheUsage, st.HasKVCacheUsage = fullest(kv, nil, d)
	return w || r
}

// fillTriton reads the TensorRT-LLM backend's labelled gauges. Running
// requests are request_type="scheduled" (as the Inference Extension's
// model-server protocol maps them), or "active" from backends without it.
func fillTriton(st *snapshot.ModelServerStats, f fams, d *dropCounts) bool {
	reqs := f.get(tritonReqs)
	var w, r bool
	st.Waiting, w = sum(reqs, labelIs("request_type", "waiting"), d)
	st.Running, r = sum(reqs, labelIs("request_type", "scheduled"), d)
	if !r {
		st.Running, r = sum(reqs, labelIs("request_type", "active"), d)
	}
	st.KVCacheUsage, st.HasKVCacheUsage = fullest(f.get(tritonKV), labelIs("kv_cache_block_type", "fraction"), d)
	return w || r
}

func labelIs(name, value string) func(sample) bool {
	return func(s sample) bool { v, _ := label(s.labels, name); return v == value }
}

// value reads a gauge, untyped or counter sample; NaN for other types.
func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	return math.NaN()
}

// loraState reads vLLM's adapter info. vLLM keeps one series per label
// combination it has ever had and sets the current one to the time, so
// the newest value is the present state. nil when LoRA is off.
func loraState(ss []sample, d *dropCounts) *snapshot.LoRAState {
	newest := -1
	for i, s := range ss {
		if !math.IsNaN(s.value) && (newest < 0 || s.value > ss[newest].value) {
			newest = i
		}
	}
	if newest < 0 {
		return nil
	}
	get := func(name string) string { v, _ := label(ss[newest].labels, name); return v }
	st := &snapshot.LoRAState{
		Running: capNames(splitNames(get("running_lora_adapters")), d),
		Waiting: capNames(splitNames(get("waiting_lora_adapters")), d),
	}
	st.MaxAdapters, _ = strconv.Atoi(strings.TrimSpace(get("max_lora")))
	if st.MaxAdapters == 0 && len(st.Running) == 0 && len(st.Waiting) == 0 {
		return nil // LoRA off: vLLM still reports max_lora="0"
	}
	return st
}

// splitNames splits a comma-separated adapter list, trimming spaces.
func splitNames(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// latency reads the _sum and _count of a time-to-first-token histogram and
// of a per-output-token one (the first of tpot names that is there),
// summed over series; nil when neither is exported soundly.
func latency(f fams, d *dropCounts, ttft string, tpot ...string) *snapshot.LatencyTotals {
	var l snapshot.LatencyTotals
	var okT, okP bool
	l.TTFTSum, l.TTFTCount, okT = histTotals(f, ttft, d)
	if !okT {
		l.TTFTSum, l.TTFTCount = 0, 0
	}
	for _, name := range tpot {
		if name == "" {
			continue
		}
		if l.TPOTSum, l.TPOTCount, okP = histTotals(f, name, d); okP {
			break
		}
		l.TPOTSum, l.TPOTCount = 0, 0
	}
	if !okT && !okP {
		return nil
	}
	return &l
}

// stages adds vLLM's per-stage request histograms: queue, prefill and
// inference (prefill + decode) time, and prompt tokens. One that is
// missing or unsound stays zero on its own.
func stages(l *snapshot.LatencyTotals, f fams, d *dropCounts) {
	for _, h := range []struct {
		name       string
		sum, count *float64
	}{
		{vllmQueue, &l.QueueSum, &l.QueueCount},
		{vllmPrefill, &l.PrefillSum, &l.PrefillCount},
		{vllmInference, &l.InferenceSum, &l.InferenceCount},
		{vllmPrompt, &l.PromptTokensSum, &l.PromptTokensCount},
	} {
		if s, n, ok := histTotals(f, h.name, d); ok {
			*h.sum, *h.count = s, n
		}
	}
}

// histTotals sums a histogram's _sum and _count samples over its series.
// ok is false when the histogram is missing or any of its totals is
// negative or not finite: the totals then mean nothing.
func histTotals(f fams, name string, d *dropCounts) (total, count float64, ok bool) {
	sums, counts := f.get(name+"_sum"), f.get(name+"_count")
	total, okS := sumAll(sums, d)
	count, okC := sumAll(counts, d)
	if len(counts) == 0 {
		okC = true // a _sum without its _count: kept as before, count 0
	}
	return total, count, okS && okC
}
