package exporter

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headroom-dev/headroom/agent/snapshot"
)

type agentDefs struct {
	buildInfo, success, duration, sampleTime, sampleDuration *def
}

func (e *Exporter) newAgentDefs() agentDefs {
	return agentDefs{
		buildInfo: e.def("headroom_agent_build_info", "gauge", "agent",
			"Always 1; labels give the agent's version and Go version.", "version", "goversion"),
		success: e.def("headroom_collector_success", "gauge", "agent",
			"1 if the collector succeeded in the last sample, else 0.", "collector"),
		duration: e.def("headroom_collector_duration_seconds", "gauge", "agent",
			"Time the collector took in the last sample.", "collector"),
		sampleTime: e.def("headroom_agent_last_sample_timestamp_seconds", "gauge", "agent",
			"Unix time the last sample started.", "node"),
		sampleDuration: e.def("headroom_agent_sample_duration_seconds", "gauge", "agent",
			"Time the last sample took, all collectors together.", "node"),
	}
}

func (e *Exporter) collectBuildInfo(ch chan<- prometheus.Metric) {
	emit(ch, e.agent.buildInfo, 1, e.version, runtime.Version())
}

func (e *Exporter) collectAgent(ch chan<- prometheus.Metric, s *snapshot.Snapshot) {
	a := e.agent
	for _, st := range s.Sources {
		emit(ch, a.success, b2f(st.Success), st.Name)
		emit(ch, a.duration, st.Duration.Seconds(), st.Name)
	}
	emit(ch, a.sampleTime, float64(s.Time.UnixNano())/1e9, s.Node)
	emit(ch, a.sampleDuration, s.Duration.Seconds(), s.Node)
}
