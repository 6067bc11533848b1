package modelsim

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LoRA adapters, as vLLM serves them with --enable-lora: a request names
// an adapter in its model field; a batch holds requests of at most
// MaxLoRAs distinct adapters (--max-loras), so a request whose adapter is
// not running waits while that many others are, and the scheduler admits
// the requests behind it that fit (vLLM skips, it does not block). Adapters
// cost no time to load here.

// adapterFor is the adapter a request's model names: "" for the base
// model; ok false when the server serves neither.
func (s *Server) adapterFor(model string) (adapter string, ok bool) {
	if model == "" || model == s.model {
		return "", true
	}
	if slices.Contains(s.loras, model) {
		return model, true
	}
	return "", false
}

// runningAdapters are the distinct adapters of the running requests.
// Guarded by s.mu.
func (s *Server) runningAdapters() []string {
	var out []string
	for _, r := range s.running {
		if r.adapter != "" && !slices.Contains(out, r.adapter) {
			out = append(out, r.adapter)
		}
	}
	return out
}

// nextAdmissible is the index of the first waiting request whose adapter
// may join the batch, -1 when none may. Guarded by s.mu.
func (s *Server) nextAdmissible() int {
	if len(s.loras) == 0 {
		if len(s.waiting) == 0 {
			return -1
		}
		return 0
	}
	running := s.runningAdapters()
	for i, r := range s.waiting {
		if r.adapter == "" || slices.Contains(running, r.adapter) || len(running) < s.maxLoRAs {
			return i
		}
	}
	return -1
}

// loraInfo is vLLM's vllm:lora_requests_info: one series whose labels
// list the adapters running and waiting and the batch's limit, and whose
// value is the time it was taken.
type loraInfo struct {
	s    *Server
	desc *prometheus.Desc
}

func newLoRAInfo(s *Server) *loraInfo {
	return &loraInfo{s: s, desc: prometheus.NewDesc("vllm:lora_requests_info", "Running stats on lora requests.",
		[]string{"max_lora", "running_lora_adapters", "waiting_lora_adapters"}, prometheus.Labels{"model_name": s.model})}
}

// Describe implements prometheus.Collector.
func (l *loraInfo) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector.
func (l *loraInfo) Collect(ch chan<- prometheus.Metric) {
	l.s.mu.Lock()
	running := l.s.runningAdapters()
	var waiting []string
	for _, r := range l.s.waiting {
		if r.adapter != "" && !slices.Contains(waiting, r.adapter) {
			waiting = append(waiting, r.adapter)
		}
	}
	l.s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(time.Now().UnixNano())/1e9,
		strconv.Itoa(l.s.maxLoRAs), strings.Join(running, ","), strings.Join(waiting, ","))
}
