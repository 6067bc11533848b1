//go:build cgo

package e2e

import (
	"fmt"
	"testing"
	"time"
)

func all(pred func(float64) bool, what string, n int) func([]sample) error {
	return func(s []sample) error {
		if len(s) != n {
			return fmt.Errorf("%d series, want %d", len(s), n)
		}
		for _, x := range s {
			if !pred(x.value) {
				return fmt.Errorf("%v = %v, want %s", x.labels, x.value, what)
			}
		}
		return nil
	}
}

// TestPrometheusScrapesTheRunningSystem runs a small system (two nodes of
// two GPUs, two picker replicas), has a real Prometheus scrape every agent
// and picker, sends requests through the gateway, and checks the key
// series through Prometheus's query API. Prometheus also evaluates the Helm
// chart's alert rules: all quiet on the healthy system, then the Xid and
// lost-GPU alerts once a GPU falls off the bus.
func TestPrometheusScrapesTheRunningSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system and Prometheus")
	}
	c := startSystem(t)
	var agents, pickers []string
	for _, n := range c.Nodes {
		agents = append(agents, n.Agent.Addr().String())
	}
	for _, p := range c.Pickers {
		pickers = append(pickers, p.MetricsAddr().String())
	}
	prom := startPrometheus(t, agents, pickers, chartRules(t))
	const within = 45 * time.Second
	one := func(v float64) bool { return v == 1 }
	positive := func(v float64) bool { return v > 0 }

	eventually(t, prom, `up`, within, all(one, "1 (scraped)", 4))
	// The agents: every GPU (a DGX has 8; 2 per node serve), every model
	// server, and its pods attributed.
	eventually(t, prom, `headroom_gpu_memory_total_bytes`, within, all(positive, "> 0", 16))
	eventually(t, prom, `headroom_modelserver_scrape_success`, within, all(one, "1", 4))
	eventually(t, prom, `headroom_collector_success{collector=~"nvml|pods|modelserver"}`, within, all(one, "1", 6))
	eventually(t, prom, `count by (node) (headroom_pod_info{namespace="llm"})`, within, all(func(v float64) bool { return v == 2 }, "2 pods", 2))
	eventually(t, prom, `headroom_mesh_vram_bytes`, within, all(func(v float64) bool { return v == 0 }, "0 (the mesh uses no VRAM)", 2))
	// The pickers hold fresh reports from both nodes.
	eventually(t, prom, `sum by (instance) (headroom_picker_nodes{state="fresh"})`, within, all(func(v float64) bool { return v == 2 }, "2 fresh nodes", 2))
	eventually(t, prom, `sum by (instance) (rate(headroom_picker_reports_received_total[5s]))`, within, all(positive, "reports arriving", 2))

	sendLoad(t, c, 40)
	// Requests went through the pickers, and the model servers' work is
	// visible in the agents' metrics.
	eventually(t, prom, `sum(headroom_picker_decisions_total)`, within, all(func(v float64) bool { return v >= 40 }, "≥ 40 decisions", 1))
	eventually(t, prom, `sum(headroom_picker_decisions_without_fresh_telemetry_total) or vector(0)`, within, all(func(v float64) bool { return v == 0 }, "0", 1))
	eventually(t, prom, `max_over_time(headroom_gpu_sm_active_ratio[30s])`, within, func(s []sample) error {
		for _, x := range s {
			if x.value > 0 {
				return nil
			}
		}
		return fmt.Errorf("no GPU showed SM activity under load: %v", s)
	})

	// Every panel of the chart's dashboards shows data.
	checkDashboards(t, prom, within)
	// The chart's alert rules: every one evaluates cleanly against the
	// live series and none fires on the healthy system.
	checkRules(t, prom, nil, within)
	// A GPU falls off the bus (the driver raises Xid 79 with it): the
	// Xid alert fires at once, the lost-GPU alert waits out its 1m "for".
	// Another takes an uncorrectable ECC error (its row remap pending):
	// the reset-needed alert fires at once.
	c.Nodes[0].GPUs.LoseGPU(5)
	c.Nodes[0].GPUs.AddECCErrors(4, 3, 1)
	checkRules(t, prom, map[string]string{"HeadroomGPUXidCritical": "firing", "HeadroomGPULost": "pending", "HeadroomGPUMemoryResetNeeded": "firing"}, within)
}
