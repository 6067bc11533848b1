package exporter

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/headroom-dev/headroom/snapshot"
)

type modelServerDefs struct {
	success, lastSuccess, staleSince *def
	waiting, running, kvCache        *def
	loraAdapters, loraMax            *def
	dropped                          *def
	genTokens                        *def
}

func (e *Exporter) newModelServerDefs() modelServerDefs {
	m := func(name, help string, extra ...string) *def {
		return e.def(name, "gauge", "modelserver", help, append([]string{"node", "namespace", "pod", "engine"}, extra...)...)
	}
	return modelServerDefs{
		success:      m("headroom_modelserver_scrape_success", "1 if the last scrape of the pod's model server succeeded."),
		lastSuccess:  m("headroom_modelserver_last_success_timestamp_seconds", "When the model server last answered; 0 if never."),
		staleSince:   m("headroom_modelserver_stale_since_timestamp_seconds", "When scrapes of the model server started failing; 0 while it answers."),
		waiting:      m("headroom_modelserver_requests_waiting", "Requests queued in the model server, all models summed."),
		running:      m("headroom_modelserver_requests_running", "Requests in the model server's running batch, all models summed."),
		kvCache:      m("headroom_modelserver_kv_cache_usage_ratio", "Fraction of KV-cache blocks in use (0-1), the fullest engine's."),
		loraAdapters: m("headroom_modelserver_lora_adapters", "LoRA adapters of running or waiting requests.", "state"),
		loraMax:      m("headroom_modelserver_lora_max_adapters", "LoRA adapters that fit in GPU memory at once."),
		genTokens: e.def("headroom_modelserver_generation_tokens_total", "counter", "modelserver",
			"Output tokens the model server generated since it started, all models summed (vLLM and SGLang; the TensorRT-LLM servers export no such counter).",
			"node", "namespace", "pod", "engine"),
		dropped: e.def("headroom_modelserver_values_dropped_total", "counter", "modelserver",
			"Impossible values the agent left out of the model server's scrapes (negative counts, non-finite values, ratios outside 0-1, families with too many series, LoRA lists past their limit), by reason.",
			"node", "namespace", "pod", "engine", "reason"),
	}
}

// gatherModelServers renders each pod's model-server reading. Stats are
// the last good scrape's, kept while the server is stale; a server never
// scraped successfully has only its success and staleness series.
func (e *Exporter) gatherModelServers(b *builder, s *snapshot.Snapshot) {
	if s.Attribution == nil {
		return
	}
	d := e.ms
	node := b.lp("node", s.Node)
	for i := range s.Attribution.Pods {
		p := &s.Attribution.Pods[i]
		ms := p.ModelServer
		if ms == nil {
			continue
		}
		l := []*dto.LabelPair{b.lp("engine", ms.Engine), b.lp("namespace", p.Namespace), node, b.lp("pod", p.Name)}
		b.add(d.success, b2f(!ms.Stale()), l)
		b.add(d.lastSuccess, unixOrZero(ms.SampleTime), l)
		b.add(d.staleSince, unixOrZero(ms.StaleSince), l)
		for reason, n := range ms.Dropped {
			b.add(d.dropped, float64(n), l, b.sharedLP("reason", reason))
		}
		if ms.SampleTime.IsZero() {
			continue
		}
		st := ms.Stats
		b.add(d.waiting, st.Waiting, l)
		b.add(d.running, st.Running, l)
		if st.HasKVCacheUsage {
			b.add(d.kvCache, st.KVCacheUsage, l)
		}
		if st.HasGenerationTokens {
			b.add(d.genTokens, st.GenerationTokens, l)
		}
		if st.LoRA != nil {
			b.add(d.loraAdapters, float64(len(st.LoRA.Running)), l, b.sharedLP("state", "running"))
			b.add(d.loraAdapters, float64(len(st.LoRA.Waiting)), l, b.sharedLP("state", "waiting"))
			b.add(d.loraMax, float64(st.LoRA.MaxAdapters), l)
		}
	}
}
