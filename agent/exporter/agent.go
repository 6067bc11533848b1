package exporter

import (
	"strconv"

	"github.com/headroom-dev/headroom/snapshot"
)

type agentDefs struct {
	success, duration, sampleTime, sampleDuration *def
}

func (e *Exporter) newAgentDefs() agentDefs {
	return agentDefs{
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

func (e *Exporter) gatherAgent(b *builder, s *snapshot.Snapshot) {
	a := e.agent
	for _, st := range s.Sources {
		c := b.lp("collector", st.Name)
		b.add(a.success, b2f(st.Success), nil, c)
		b.add(a.duration, st.Duration.Seconds(), nil, c)
	}
	node := b.lp("node", s.Node)
	b.add(a.sampleTime, float64(s.Time.UnixNano())/1e9, nil, node)
	b.add(a.sampleDuration, s.Duration.Seconds(), nil, node)
}

func itoa(i int) string { return strconv.Itoa(i) }
