// Package report turns the agent's snapshot into the NodeReport it streams
// to the pickers (proto/headroom/telemetry/v1). A report is always whole:
// any single one is enough to route by. Model-server readings, which are
// scraped on a faster clock than the GPUs are sampled, are overlaid from
// the newest scrape round so a report is as fresh as its freshest source.
package report

import (
	"maps"
	"math"
	"slices"
	"time"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

// ModelServers returns the newest model-server reading of a pod, or nil to
// keep the one in the snapshot.
type ModelServers func(p *snapshot.Pod) *snapshot.ModelServer

// Meta is what the stream adds to a snapshot.
type Meta struct {
	Instance string
	Sequence uint64
	Interval time.Duration
}

// Build returns the report of s. newer may be nil.
func Build(s *snapshot.Snapshot, newer ModelServers, m Meta) *telemetryv1.NodeReport {
	r := &telemetryv1.NodeReport{
		Node:          s.Node,
		AgentInstance: m.Instance,
		Sequence:      m.Sequence,
		IntervalNano:  int64(m.Interval),
		Gpus:          make([]*telemetryv1.GPU, 0, len(s.GPUs)),
	}
	sample := s.Time
	for i := range s.GPUs {
		r.Gpus = append(r.Gpus, gpu(&s.GPUs[i]))
	}
	if a := s.Attribution; a != nil {
		uids := podUIDs(a)
		fillOwners(r.Gpus, s.GPUs, uids)
		perToken := energyPerToken(s.Energy)
		pods := a.Pods[:min(len(a.Pods), telemetryv1.MaxPods)]
		r.Pods = make([]*telemetryv1.Pod, 0, len(pods))
		for i := range pods {
			p := &a.Pods[i]
			ms := p.ModelServer
			if newer != nil {
				if n := newer(p); n != nil {
					ms = n
				}
			}
			if ms != nil && ms.SampleTime.After(sample) {
				sample = ms.SampleTime
			}
			out := pod(p, ms)
			if j, ok := perToken[[2]string{p.Namespace, p.Name}]; ok && finiteNonNeg(j) {
				out.EnergyPerOutputTokenJoules = &j
			}
			r.Pods = append(r.Pods, out)
		}
	}
	if s.Attribution != nil || s.Mesh != nil {
		r.Mesh = mesh(s)
	}
	r.SampleTimeUnixNano = unixNano(sample)
	return r
}

func gpu(g *snapshot.GPU) *telemetryv1.GPU {
	out := &telemetryv1.GPU{
		Index: int32(g.Index), Uuid: g.UUID, Name: g.Name,
		Health:             health(g),
		SmActive:           g.SMActive,
		SmOccupancy:        g.SMOccupancy,
		TemperatureCelsius: g.TemperatureCelsius,
		PowerWatts:         g.PowerWatts,
	}
	if p := g.Profiling; p != nil {
		if p.SMActive != nil {
			out.SmActive = p.SMActive
		}
		if p.SMOccupancy != nil {
			out.SmOccupancy = p.SMOccupancy
		}
	}
	if m := g.Memory; m != nil {
		out.MemoryTotalBytes, out.MemoryUsedBytes, out.MemoryFreeBytes = m.Total, m.Used, m.Free
	}
	if u := g.Utilization; u != nil {
		out.Utilization, out.MemoryUtilization = &u.GPU, &u.Memory
	}
	if g.ThrottleReasons != nil {
		out.ThrottleReasons = *g.ThrottleReasons
	}
	out.Mig = migSlices(g.MIG)
	if procs := capProcesses(g.Processes); len(procs) > 0 {
		// One backing array instead of one allocation per process.
		backing := make([]telemetryv1.Process, len(procs))
		out.Processes = make([]*telemetryv1.Process, len(procs))
		for i, p := range procs {
			bp := &backing[i]
			bp.Pid, bp.UsedMemoryBytes, bp.Container = p.PID, p.UsedMemory, p.Container
			out.Processes[i] = bp
		}
	}
	return out
}

func health(g *snapshot.GPU) *telemetryv1.GPUHealth {
	h := &telemetryv1.GPUHealth{Lost: g.Lost}
	if g.ECC != nil {
		h.EccUncorrected = g.ECC.Uncorrected
	}
	if rr := g.RemappedRows; rr != nil {
		h.RowRemapPending, h.RowRemapFailed = rr.Pending, rr.Failed
	}
	if len(g.XidErrors) > 0 {
		codes := slices.Sorted(maps.Keys(g.XidErrors))
		for _, code := range codes[:min(len(codes), telemetryv1.MaxXidCodesPerGPU)] {
			h.XidErrors = append(h.XidErrors, &telemetryv1.XidCount{Code: code, Count: g.XidErrors[code]})
		}
	}
	return h
}

// migSlices carries a GPU's MIG slices with their own readings (at most
// the report's limit).
func migSlices(ms []snapshot.MIGDevice) []*telemetryv1.MIGSlice {
	if len(ms) == 0 {
		return nil
	}
	ms = ms[:min(len(ms), telemetryv1.MaxMIGPerGPU)]
	out := make([]*telemetryv1.MIGSlice, len(ms))
	for i, m := range ms {
		s := &telemetryv1.MIGSlice{Uuid: m.UUID, GpuInstanceId: int32(m.GPUInstanceID), SmActive: m.SMActive}
		if mem := m.Memory; mem != nil && mem.Used <= mem.Total {
			s.MemoryTotalBytes, s.MemoryUsedBytes, s.MemoryFreeBytes = mem.Total, mem.Used, mem.Free
		}
		out[i] = s
	}
	return out
}

// energyPerToken maps namespace/name to the pod's estimated joules per
// output token; nil without the energy collector.
func energyPerToken(e *snapshot.Energy) map[[2]string]float64 {
	if e == nil || len(e.PerOutputToken) == 0 {
		return nil
	}
	m := make(map[[2]string]float64, len(e.PerOutputToken))
	for _, p := range e.PerOutputToken {
		m[[2]string{p.Namespace, p.Pod}] = p.Joules
	}
	return m
}

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 1) }

// podUIDs maps namespace/name to UID, to name each process's pod by UID.
func podUIDs(a *snapshot.Attribution) map[[2]string]string {
	m := make(map[[2]string]string, len(a.Pods))
	for _, p := range a.Pods {
		m[[2]string{p.Namespace, p.Name}] = p.UID
	}
	return m
}

func fillOwners(out []*telemetryv1.GPU, gpus []snapshot.GPU, uids map[[2]string]string) {
	for i := range gpus {
		for j, p := range capProcesses(gpus[i].Processes) {
			if p.Pod != "" {
				out[i].Processes[j].PodUid = uids[[2]string{p.Namespace, p.Pod}]
			}
		}
	}
}

func pod(p *snapshot.Pod, ms *snapshot.ModelServer) *telemetryv1.Pod {
	out := &telemetryv1.Pod{
		Namespace: p.Namespace, Name: p.Name, Uid: p.UID, Ip: p.IP,
		Port: uint32(p.Port), GpuUuids: p.GPUs[:min(len(p.GPUs), telemetryv1.MaxGPUsPerPod)],
	}
	if ms != nil {
		out.ModelServer = ModelServer(ms)
	}
	if len(p.MIG) > 0 {
		out.MigUuids = p.MIG[:min(len(p.MIG), telemetryv1.MaxGPUsPerPod)]
	}
	return out
}

// ModelServer is a model-server reading as the report carries it:
// impossible counts and ratios left out, latency totals only when sound.
// The picker uses it for the servers it reads itself.
func ModelServer(ms *snapshot.ModelServer) *telemetryv1.ModelServer {
	out := &telemetryv1.ModelServer{
		Engine:             ms.Engine,
		SampleTimeUnixNano: unixNano(ms.SampleTime),
		Stale:              ms.Stale(),
		WaitingRequests:    soundCount(ms.Stats.Waiting),
		RunningRequests:    soundCount(ms.Stats.Running),
	}
	if ms.Stats.HasKVCacheUsage {
		if kv, ok := soundRatio(ms.Stats.KVCacheUsage); ok {
			out.KvCacheUsage = &kv
		}
	}
	if l := ms.Stats.Latency; l != nil && soundLatency(l) {
		out.Latency = &telemetryv1.LatencyTotals{TtftSecondsSum: l.TTFTSum, TtftCount: l.TTFTCount, TpotSecondsSum: l.TPOTSum, TpotCount: l.TPOTCount,
			QueueSecondsSum: l.QueueSum, QueueCount: l.QueueCount, PrefillSecondsSum: l.PrefillSum, PrefillCount: l.PrefillCount,
			InferenceSecondsSum: l.InferenceSum, InferenceCount: l.InferenceCount, PromptTokensSum: l.PromptTokensSum, PromptTokensCount: l.PromptTokensCount}
	}
	if l := ms.Stats.LoRA; l != nil {
		out.Lora = &telemetryv1.LoRA{Running: adapterNames(l.Running), Waiting: adapterNames(l.Waiting), MaxAdapters: uint32(max(l.MaxAdapters, 0))}
	}
	return out
}

func mesh(s *snapshot.Snapshot) *telemetryv1.MeshOverhead {
	sum := snapshot.SummarizeMesh(s)
	m := &telemetryv1.MeshOverhead{
		SidecarMemoryBytes: sum.SidecarMemory,
		SidecarGpuPods:     uint32(sum.SidecarPods), SidecarMemoryPerGpuPodBytes: sum.SidecarPerPod,
		AmbientGpuPods: uint32(sum.AmbientPods), ZtunnelMemoryPerGpuPodBytes: sum.ZtunnelPerPod,
	}
	var z *snapshot.Ztunnel
	if s.Mesh != nil {
		z = s.Mesh.Ztunnel
	}
	if z != nil {
		m.ZtunnelPresent = z.Present
		if mem := z.Memory; mem != nil {
			m.ZtunnelMemoryBytes, m.ZtunnelMemoryAnonBytes, m.ZtunnelCpuSeconds = mem.WorkingSet, mem.Anon, mem.CPUSeconds
		}
	}
	byUID := map[string]*telemetryv1.PodMesh{}
	if a := s.Attribution; a != nil {
		m.MeshVramBytes = a.MeshVRAM
		for i := range a.Pods[:min(len(a.Pods), telemetryv1.MaxPods)] {
			p := &a.Pods[i]
			pm := &telemetryv1.PodMesh{PodUid: p.UID}
			if sc, ok := snapshot.SidecarUse(p); ok {
				pm.SidecarMemoryBytes = sc.WorkingSet
			}
			byUID[p.UID] = pm
			m.Pods = append(m.Pods, pm)
		}
	}
	if z == nil || z.Traffic == nil {
		return m
	}
	m.ZtunnelEbpf = true
	for _, f := range z.Traffic.Flows {
		m.ZtunnelBytesSent += f.BytesSent
		m.ZtunnelBytesReceived += f.BytesReceived
		m.ZtunnelConnectionsActive += f.Active()
		if pm := byUID[f.UID]; pm != nil && f.UID != "" {
			pm.ZtunnelBytesSent += f.BytesSent
			pm.ZtunnelBytesReceived += f.BytesReceived
			pm.ZtunnelConnectionsActive += f.Active()
		}
	}
	for _, ps := range z.EstimatedPodCPU() {
		if pm := byUID[ps.UID]; pm != nil && ps.UID != "" {
			pm.ZtunnelEstimatedCpuSeconds = ps.CPUSeconds
		}
	}
	return m
}

func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}
