package exporter

import (
	"strconv"

	dto "github.com/prometheus/client_model/go"

	"github.com/headroom-dev/headroom/snapshot"
)

type meshDefs struct {
	scWS, scAnon, scCPU                     *def
	ovMem, ovPerPod, ovPods                 *def
	ztPresent, ztWS, ztAnon, ztCPU          *def
	ztSent, ztRecv, ztOpened, ztClosed      *def
	ztActive, ztThreadCPU, ztEstCPU         *def
	bpfAttached, bpfRuns, bpfRunSec, bpfAvg *def
}

func (e *Exporter) newMeshDefs() meshDefs {
	m := func(name, typ, source, help string, labels ...string) *def {
		return e.def(name, typ, source, help, append([]string{"node"}, labels...)...)
	}
	pod := []string{"namespace", "pod"}
	flow := []string{"namespace", "pod", "leg"}
	const zt, ze = "ztunnel", "ztunnel_ebpf"
	return meshDefs{
		scWS:        m("headroom_mesh_sidecar_memory_working_set_bytes", "gauge", "pods", "Working set of the mesh sidecar containers of a GPU pod.", pod...),
		scAnon:      m("headroom_mesh_sidecar_memory_anon_bytes", "gauge", "pods", "Anonymous memory of the mesh sidecar containers of a GPU pod.", pod...),
		scCPU:       m("headroom_mesh_sidecar_cpu_seconds_total", "counter", "pods", "CPU time of the mesh sidecar containers of a GPU pod.", pod...),
		ovMem:       m("headroom_mesh_overhead_memory_bytes", "gauge", "agent", "The mesh's memory on the node by mode: sidecar sums the GPU pods' sidecars, ambient is ztunnel's working set.", "mode"),
		ovPerPod:    m("headroom_mesh_overhead_memory_per_gpu_pod_bytes", "gauge", "agent", "The mesh's memory per GPU pod it serves, by mode.", "mode"),
		ovPods:      m("headroom_mesh_overhead_gpu_pods", "gauge", "agent", "GPU pods served by each mode: with a sidecar, or without one while ztunnel runs.", "mode"),
		ztPresent:   m("headroom_mesh_ztunnel_present", "gauge", zt, "1 while a ztunnel runs on the node; 0 in sidecar mode or without a mesh.", pod...),
		ztWS:        m("headroom_mesh_ztunnel_memory_working_set_bytes", "gauge", zt, "ztunnel's container working set (cgroup v2)."),
		ztAnon:      m("headroom_mesh_ztunnel_memory_anon_bytes", "gauge", zt, "ztunnel's container anonymous memory (cgroup v2)."),
		ztCPU:       m("headroom_mesh_ztunnel_cpu_seconds_total", "counter", zt, "ztunnel's container CPU time (cgroup v2 cpu.stat)."),
		ztSent:      m("headroom_mesh_ztunnel_bytes_sent_total", "counter", ze, "TCP payload bytes ztunnel sent, by the pod whose network namespace the socket is in and leg.", flow...),
		ztRecv:      m("headroom_mesh_ztunnel_bytes_received_total", "counter", ze, "TCP payload bytes ztunnel received, by pod and leg.", flow...),
		ztOpened:    m("headroom_mesh_ztunnel_connections_opened_total", "counter", ze, "TCP connections of ztunnel that reached ESTABLISHED, by pod and leg.", flow...),
		ztClosed:    m("headroom_mesh_ztunnel_connections_closed_total", "counter", ze, "ztunnel's established TCP connections that closed, by pod and leg.", flow...),
		ztActive:    m("headroom_mesh_ztunnel_connections_active", "gauge", ze, "ztunnel's TCP connections open now (opened minus closed since the programs loaded), by pod and leg.", flow...),
		ztThreadCPU: m("headroom_mesh_ztunnel_thread_cpu_seconds_total", "counter", ze, "CPU time of one ztunnel thread, from sched_switch.", "pid", "tid", "thread"),
		ztEstCPU:    m("headroom_mesh_ztunnel_estimated_cpu_seconds_total", "counter", ze, "ztunnel's CPU split by each pod's share of the bytes it moved: an estimate, not a measurement.", pod...),
		bpfAttached: m("headroom_mesh_ztunnel_bpf_program_attached", "gauge", ze, "1 if the eBPF program is loaded and attached.", "program"),
		bpfRuns:     m("headroom_mesh_ztunnel_bpf_program_runs_total", "counter", ze, "Times the eBPF program ran (kernel BPF stats).", "program"),
		bpfRunSec:   m("headroom_mesh_ztunnel_bpf_program_run_seconds_total", "counter", ze, "Time the eBPF program ran (kernel BPF stats).", "program"),
		bpfAvg:      m("headroom_mesh_ztunnel_bpf_program_average_run_seconds", "gauge", ze, "Average run time of the eBPF program since it loaded.", "program"),
	}
}

// gatherMesh renders sidecars (from the pods part), ztunnel (from the
// ztunnel parts) and the per-node overhead summary.
func (e *Exporter) gatherMesh(b *builder, s *snapshot.Snapshot) {
	if s.Attribution == nil && s.Mesh == nil {
		return
	}
	d := e.mesh
	node := []*dto.LabelPair{b.lp("node", s.Node)}
	sum := snapshot.SummarizeMesh(s)
	if a := s.Attribution; a != nil {
		for _, p := range a.Pods {
			sc, ok := snapshot.SidecarUse(&p)
			if !ok {
				continue
			}
			l := []*dto.LabelPair{b.lp("namespace", p.Namespace), b.lp("pod", p.Name)}
			b.add(d.scWS, float64(sc.WorkingSet), node, l...)
			b.add(d.scAnon, float64(sc.Anon), node, l...)
			b.add(d.scCPU, sc.CPUSeconds, node, l...)
		}
	}
	for _, mode := range []struct {
		name        string
		mem, perPod uint64
		pods        int
	}{{"sidecar", sum.SidecarMemory, sum.SidecarPerPod, sum.SidecarPods}, {"ambient", sum.ZtunnelMemory, sum.ZtunnelPerPod, sum.AmbientPods}} {
		ml := b.lp("mode", mode.name)
		b.add(d.ovMem, float64(mode.mem), node, ml)
		b.add(d.ovPerPod, float64(mode.perPod), node, ml)
		b.add(d.ovPods, float64(mode.pods), node, ml)
	}
	if s.Mesh == nil || s.Mesh.Ztunnel == nil {
		return
	}
	e.gatherZtunnel(b, node, s.Mesh.Ztunnel)
}

func (e *Exporter) gatherZtunnel(b *builder, node []*dto.LabelPair, z *snapshot.Ztunnel) {
	d := e.mesh
	b.add(d.ztPresent, b2f(z.Present), node, b.lp("namespace", z.Namespace), b.lp("pod", z.Pod))
	if m := z.Memory; m != nil {
		b.add(d.ztWS, float64(m.WorkingSet), node)
		b.add(d.ztAnon, float64(m.Anon), node)
		b.add(d.ztCPU, m.CPUSeconds, node)
	}
	t := z.Traffic
	if t == nil {
		return
	}
	for _, f := range t.Flows {
		l := mergePairs(node, []*dto.LabelPair{b.sharedLP("namespace", f.Namespace), b.sharedLP("pod", f.Pod), b.lp("leg", f.Leg)})
		b.add(d.ztSent, float64(f.BytesSent), l)
		b.add(d.ztRecv, float64(f.BytesReceived), l)
		b.add(d.ztOpened, float64(f.Opened), l)
		b.add(d.ztClosed, float64(f.Closed), l)
		b.add(d.ztActive, float64(f.Active()), l)
	}
	for _, th := range t.Threads {
		b.add(d.ztThreadCPU, th.CPUSeconds, node, b.lp("pid", strconv.FormatUint(uint64(th.PID), 10)), b.lp("tid", strconv.FormatUint(uint64(th.TID), 10)), b.lp("thread", th.Name))
	}
	for _, p := range z.EstimatedPodCPU() {
		b.add(d.ztEstCPU, p.CPUSeconds, node, b.lp("namespace", p.Namespace), b.lp("pod", p.Pod))
	}
	for _, p := range t.Programs {
		pl := b.lp("program", p.Name)
		b.add(d.bpfAttached, b2f(p.Attached), node, pl)
		if !p.Attached {
			continue
		}
		b.add(d.bpfRuns, float64(p.RunCount), node, pl)
		b.add(d.bpfRunSec, p.RunSeconds, node, pl)
		if p.RunCount > 0 {
			b.add(d.bpfAvg, p.RunSeconds/float64(p.RunCount), node, pl)
		}
	}
}
