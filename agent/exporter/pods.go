package exporter

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/headroom-dev/headroom/snapshot"
)

type podDefs struct {
	owner, podInfo                  *def
	ctrGPUMem, ctrGPUCtx            *def
	ctrWS, ctrAnon, ctrFile, ctrCPU *def
	meshVRAM, unattributed          *def
	lastSuccess, staleSince         *def
}

func (e *Exporter) newPodDefs() podDefs {
	p := func(name, typ, help string, labels ...string) *def {
		return e.def(name, typ, "pods", help, append([]string{"node"}, labels...)...)
	}
	ctr := []string{"namespace", "pod", "container"}
	ctrGPU := append(append([]string(nil), ctr...), "gpu", "uuid")
	ctrMem := append(append([]string(nil), ctr...), "sidecar")
	return podDefs{
		owner:        p("headroom_gpu_owner_info", "gauge", "1 for each container the kubelet assigned the GPU to (several for a shared GPU); join on uuid for pod labels.", "gpu", "uuid", "namespace", "pod", "container"),
		podInfo:      p("headroom_pod_info", "gauge", "1 for each GPU pod; labels give its UID and IP.", "namespace", "pod", "uid", "ip"),
		ctrGPUMem:    p("headroom_container_gpu_memory_used_bytes", "gauge", "VRAM held by the container's processes on the GPU.", ctrGPU...),
		ctrGPUCtx:    p("headroom_container_gpu_contexts", "gauge", "The container's processes (CUDA contexts) on the GPU.", ctrGPU...),
		ctrWS:        p("headroom_container_memory_working_set_bytes", "gauge", "cgroup memory.current minus inactive_file, as the kubelet counts it.", ctrMem...),
		ctrAnon:      p("headroom_container_memory_anon_bytes", "gauge", "cgroup anonymous memory.", ctrMem...),
		ctrFile:      p("headroom_container_memory_file_bytes", "gauge", "cgroup page cache.", ctrMem...),
		ctrCPU:       p("headroom_container_cpu_seconds_total", "counter", "cgroup CPU time.", ctrMem...),
		meshVRAM:     p("headroom_mesh_vram_bytes", "gauge", "VRAM held by processes in mesh proxy containers: measured, expected 0."),
		unattributed: p("headroom_gpu_unattributed_processes", "gauge", "GPU processes whose pod and container could not be told."),
		lastSuccess:  p("headroom_attribution_last_success_timestamp_seconds", "gauge", "When the source (kubelet or runtime) last answered.", "source"),
		staleSince:   p("headroom_attribution_stale_since_timestamp_seconds", "gauge", "When the source stopped answering; 0 while it answers.", "source"),
	}
}

func (e *Exporter) gatherPods(b *builder, s *snapshot.Snapshot) {
	a := s.Attribution
	if a == nil {
		return
	}
	d := e.pods
	node := []*dto.LabelPair{b.lp("node", s.Node)}
	for _, g := range s.GPUs {
		for _, o := range a.Owners[g.UUID] {
			b.add(d.owner, 1, node, b.lp("gpu", itoa(g.Index)), b.lp("uuid", g.UUID), b.lp("namespace", o.Namespace), b.lp("pod", o.Pod), b.lp("container", o.Container))
		}
	}
	index := map[string]string{}
	for _, g := range s.GPUs {
		index[g.UUID] = itoa(g.Index)
	}
	for _, p := range a.Pods {
		ns, pod := b.lp("namespace", p.Namespace), b.lp("pod", p.Name)
		b.add(d.podInfo, 1, node, ns, pod, b.lp("uid", p.UID), b.lp("ip", p.IP))
		for _, c := range p.Containers {
			l := mergePairs(node, []*dto.LabelPair{ns, pod, b.lp("container", c.Name)})
			for uuid, u := range c.GPUs {
				gl := []*dto.LabelPair{b.lp("gpu", index[uuid]), b.lp("uuid", uuid)}
				b.add(d.ctrGPUMem, float64(u.Memory), l, gl...)
				b.add(d.ctrGPUCtx, float64(u.Contexts), l, gl...)
			}
			if m := c.Memory; m != nil {
				sc := b.lp("sidecar", boolLabel(c.Sidecar))
				b.add(d.ctrWS, float64(m.WorkingSet), l, sc)
				b.add(d.ctrAnon, float64(m.Anon), l, sc)
				b.add(d.ctrFile, float64(m.File), l, sc)
				b.add(d.ctrCPU, m.CPUSeconds, l, sc)
			}
		}
	}
	b.add(d.meshVRAM, float64(a.MeshVRAM), node)
	b.add(d.unattributed, float64(a.UnattributedProcesses), node)
	for _, src := range []struct {
		name string
		f    snapshot.SourceFreshness
	}{{"kubelet", a.Kubelet}, {"runtime", a.Runtime}} {
		sl := b.lp("source", src.name)
		b.add(d.lastSuccess, unixOrZero(src.f.LastSuccess), node, sl)
		b.add(d.staleSince, unixOrZero(src.f.StaleSince), node, sl)
	}
}

func boolLabel(v bool) string {
	if v {
		return "true"
	}
	return "false"
}
