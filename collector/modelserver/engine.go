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

	// Latency histograms: only their _sum and _count lines are kept, which
	// the parser then reads as untyped samples (their TYPE line is not).
	vllmTTFT    = "vllm:time_to_first_token_seconds"
	vllmITL     = "vllm:inter_token_latency_seconds"
	vllmTPOTOld = "vllm:time_per_output_token_seconds"
	sglangTTFT  = "sglang:time_to_first_token_seconds"
	sglangITL   = "sglang:inter_token_latency_seconds"

	// Output tokens generated since the server started (counters). The
	// TensorRT-LLM servers export no such counter (trtllm-serve's five
	// metrics are request counts and latency histograms).
	vllmGenTokens   = "vllm:generation_tokens_total"
	sglangGenTokens = "sglang:generation_tokens_total"
)

// families are the metric families each engine's extraction reads; every
// other line of a response is dropped before parsing.
var families = map[Engine][]string{
	VLLM: {vllmWaiting, vllmRunning, vllmKV, vllmKVOld, vllmLoRA,
		vllmTTFT + "_sum", vllmTTFT + "_count", vllmITL + "_sum", vllmITL + "_count", vllmTPOTOld + "_sum", vllmTPOTOld + "_count", vllmGenTokens},
	SGLang: {sglangWaiting, sglangRunning, sglangKV,
		sglangTTFT + "_sum", sglangTTFT + "_count", sglangITL + "_sum", sglangITL + "_count", sglangGenTokens},
	TRTLLM: {trtWaiting, trtRunning, trtKV},
	Triton: {tritonReqs, tritonKV},
}

// ErrNoMetrics means a response held none of the engine's queue metrics:
// the wrong port, path or engine, or a server still starting.
var ErrNoMetrics = errors.New("no known metrics in response")

// parser parses one target's responses. It keeps its buffers between
// scrapes and must not be used concurrently (a target has at most one
// scrape in flight).
type parser struct {
	text     expfmt.TextParser
	filtered []byte
	// series counts the sample lines of each wanted family (text).
	series []int
	// dropped counts the values the last parse left out.
	dropped dropCounts
}

func newParser() *parser {
	return &parser{text: expfmt.NewTextParser(model.UTF8Validation)}
}

// parse extracts an engine's stats from a response body. contentType
// selects the decoder: delimited protobuf when the server sent it,
// otherwise the text parser (Prometheus text and OpenMetrics 1.0, whose
// gauge lines are the same).
func (p *parser) parse(e Engine, body []byte, contentType string) (snapshot.ModelServerStats, error) {
	want, ok := families[e]
	if !ok {
		return snapshot.ModelServerStats{}, fmt.Errorf("unknown engine %q", e)
	}
	p.dropped = dropCounts{}
	var fams map[string]*dto.MetricFamily
	var err error
	if isProto(contentType) {
		fams, err = decodeProto(body, want, &p.dropped)
	} else {
		p.series = append(p.series[:0], make([]int, len(want))...)
		p.filtered = filterLines(p.filtered[:0], body, want, p.series)
		fams, err = p.text.TextToMetricFamilies(bytes.NewReader(p.filtered))
		for i, n := range p.series {
			if n > MaxSeriesPerFamily && fams[want[i]] != nil {
				delete(fams, want[i])
				p.dropped.add(dropTooManySeries)
			}
		}
	}
	if err != nil {
		return snapshot.ModelServerStats{}, fmt.Errorf("parse %s metrics: %w", e, err)
	}
	return extract(e, fams, &p.dropped)
}

// isProto reports a delimited protobuf response (checked by prefix first:
// parsing the content type allocates).
func isProto(contentType string) bool {
	return strings.HasPrefix(contentType, expfmt.ProtoType) &&
		expfmt.Format(contentType).FormatType() == expfmt.TypeProtoDelim
}

// decodeProto reads delimited protobuf families, keeping the wanted ones
// with at most MaxSeriesPerFamily series. A message may not claim to be
// longer than the body: a six-byte response declaring a 26 GB message
// would otherwise make the decoder allocate that much (expfmt's decoder
// sets no limit), and a model server could kill the node's agent.
func decodeProto(body []byte, want []string, d *dropCounts) (map[string]*dto.MetricFamily, error) {
	r := bytes.NewReader(body)
	opts := protodelim.UnmarshalOptions{MaxSize: int64(len(body))}
	out := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		err := opts.UnmarshalFrom(r, mf)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		// A histogram arrives whole in protobuf: it is wanted when its
		// _sum is (the text path keeps only _sum and _count lines).
		if !slices.Contains(want, mf.GetName()) && !slices.Contains(want, mf.GetName()+"_sum") {
			continue
		}
		if len(mf.GetMetric()) > MaxSeriesPerFamily {
			d.add(dropTooManySeries)
			continue
		}
		if err := validLabels(mf); err != nil {
			return nil, err
		}
		out[mf.GetName()] = mf
	}
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

// filterLines appends to dst the lines of body that belong to the wanted
// families: their samples and their HELP and TYPE comments. A model
// server's exposition is mostly histograms the source never reads, so
// the parser only sees the few lines that matter. Names are compared
// without allocating. When series is not nil (one counter per wanted
// name), it counts each family's sample lines and stops copying a
// family's samples past MaxSeriesPerFamily + 1: the caller leaves such a
// family out, and its lines cost the parser nothing more.
func filterLines(dst, body []byte, want []string, series []int) []byte {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i+1], body[i+1:]
		} else {
			body = nil
		}
		i := wanted(lineName(line), want)
		if i < 0 {
			continue
		}
		if series != nil && !isComment(line) {
			if series[i]++; series[i] > MaxSeriesPerFamily+1 {
				continue
			}
		}
		dst = append(dst, line...)
		if line[len(line)-1] != '\n' {
			dst = append(dst, '\n')
		}
	}
	return dst
}

func isComment(line []byte) bool {
	line = bytes.TrimLeft(line, " \t")
	return len(line) > 0 && line[0] == '#'
}

// lineName returns the metric name a line is about: the sample's name, or
// the name of a HELP or TYPE comment; nil for other lines.
func lineName(line []byte) []byte {
	line = bytes.TrimLeft(line, " \t")
	if len(line) > 0 && line[0] == '#' {
		line = bytes.TrimLeft(line[1:], " \t")
		if !bytes.HasPrefix(line, []byte("HELP")) && !bytes.HasPrefix(line, []byte("TYPE")) {
			return nil
		}
		line = bytes.TrimLeft(line[4:], " \t")
	}
	end := bytes.IndexAny(line, "{ \t\r\n")
	if end < 0 {
		end = len(line)
	}
	return line[:end]
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

// extract turns an engine's families into stats. Counts are summed over
// the series (several models or data-parallel engines on one server); KV
// usage is the fullest series. Impossible values are left out and counted
// in d.
func extract(e Engine, fams map[string]*dto.MetricFamily, d *dropCounts) (snapshot.ModelServerStats, error) {
	var st snapshot.ModelServerStats
	var found bool
	switch e {
	case VLLM:
		found = fill(&st, fams[vllmWaiting], fams[vllmRunning], fams[vllmKV], d)
		if !st.HasKVCacheUsage {
			st.KVCacheUsage, st.HasKVCacheUsage = fullest(fams[vllmKVOld], nil, d)
		}
		st.LoRA = loraState(fams[vllmLoRA], d)
		st.Latency = latency(fams, d, vllmTTFT, vllmITL, vllmTPOTOld)
		st.GenerationTokens, st.HasGenerationTokens = sumAll(fams[vllmGenTokens], d)
	case SGLang:
		found = fill(&st, fams[sglangWaiting], fams[sglangRunning], fams[sglangKV], d)
		st.Latency = latency(fams, d, sglangTTFT, sglangITL, "")
		st.GenerationTokens, st.HasGenerationTokens = sumAll(fams[sglangGenTokens], d)
	case TRTLLM:
		found = fill(&st, fams[trtWaiting], fams[trtRunning], fams[trtKV], d)
	case Triton:
		found = fillTriton(&st, fams, d)
	}
	if !found {
		return st, fmt.Errorf("%s: %w", e, ErrNoMetrics)
	}
	return st, nil
}

// fill reads the common waiting/running/KV shape.
func fill(st *snapshot.ModelServerStats, waiting, running, kv *dto.MetricFamily, d *dropCounts) bool {
	var w, r bool
	st.Waiting, w = sum(waiting, nil, d)
	st.Running, r = sum(running, nil, d)
	st.KVCacheUsage, st.HasKVCacheUsage = fullest(kv, nil, d)
	return w || r
}

// fillTriton reads the TensorRT-LLM backend's labelled gauges. Running
// requests are request_type="scheduled" (as the Inference Extension's
// model-server protocol maps them), or "active" from backends without it.
func fillTriton(st *snapshot.ModelServerStats, fams map[string]*dto.MetricFamily, d *dropCounts) bool {
	reqs := fams[tritonReqs]
	var w, r bool
	st.Waiting, w = sum(reqs, labelIs("request_type", "waiting"), d)
	st.Running, r = sum(reqs, labelIs("request_type", "scheduled"), d)
	if !r {
		st.Running, r = sum(reqs, labelIs("request_type", "active"), d)
	}
	st.KVCacheUsage, st.HasKVCacheUsage = fullest(fams[tritonKV], labelIs("kv_cache_block_type", "fraction"), d)
	return w || r
}

func labelIs(name, value string) func(*dto.Metric) bool {
	return func(m *dto.Metric) bool { return label(m, name) == value }
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
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
func loraState(f *dto.MetricFamily, d *dropCounts) *snapshot.LoRAState {
	var newest *dto.Metric
	for _, m := range f.GetMetric() {
		if v := value(m); !math.IsNaN(v) && (newest == nil || v > value(newest)) {
			newest = m
		}
	}
	if newest == nil {
		return nil
	}
	st := &snapshot.LoRAState{
		Running: capNames(splitNames(label(newest, "running_lora_adapters")), d),
		Waiting: capNames(splitNames(label(newest, "waiting_lora_adapters")), d),
	}
	st.MaxAdapters, _ = strconv.Atoi(strings.TrimSpace(label(newest, "max_lora")))
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
func latency(fams map[string]*dto.MetricFamily, d *dropCounts, ttft string, tpot ...string) *snapshot.LatencyTotals {
	var l snapshot.LatencyTotals
	var okT, okP bool
	l.TTFTSum, l.TTFTCount, okT = histTotals(fams, ttft, d)
	if !okT {
		l.TTFTSum, l.TTFTCount = 0, 0
	}
	for _, name := range tpot {
		if name == "" {
			continue
		}
		if l.TPOTSum, l.TPOTCount, okP = histTotals(fams, name, d); okP {
			break
		}
		l.TPOTSum, l.TPOTCount = 0, 0
	}
	if !okT && !okP {
		return nil
	}
	return &l
}

// histTotals sums a histogram's sum and count over its series: from the
// family itself (protobuf), or from its _sum and _count samples (text).
// ok is false when the histogram is missing or any of its totals is
// negative or not finite: the totals then mean nothing.
func histTotals(fams map[string]*dto.MetricFamily, name string, d *dropCounts) (total, count float64, ok bool) {
	if f := fams[name]; f != nil {
		sound := true
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				sound = d.count(h.GetSampleSum()) && sound
				total += h.GetSampleSum()
				count += float64(h.GetSampleCount())
				ok = true
			}
		}
		if ok {
			if sound && math.IsInf(total, 0) {
				d.add(dropNotFinite)
				sound = false
			}
			return total, count, sound
		}
	}
	total, okS := sumAll(fams[name+"_sum"], d)
	count, okC := sumAll(fams[name+"_count"], d)
	if fams[name+"_count"] == nil {
		okC = true // a _sum without its _count: kept as before, count 0
	}
	return total, count, okS && okC
}
