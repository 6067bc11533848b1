// Package energy is the agent's energy collector: an enrich step that
// splits each GPU's measured energy between the pods on it and turns a
// pod's share into joules per output token where its model server counts
// the tokens it generates.
//
// The measurement is NVML's total energy counter (read by the nvml
// source); everything this package derives from it is an estimate, made
// as follows. Over each sample interval, a GPU's energy ΔE (the counter's
// change) is charged to each process on it in proportion to the process's
// SM utilisation over the same interval (NVML per-process utilisation, the
// share of the interval its kernels held the SMs): a process at 40 % is
// charged 0.4·ΔE. When the processes' utilisations add up to more than
// 100 % (overlapping kernels) the shares are scaled down to sum to 1. What
// remains is never spread over the pods but kept apart per GPU:
//
//   - idle: ΔE·(1 − Σ utilisation), the interval's time with no process's
//     kernels on the SMs (and all of ΔE when the GPU has no process);
//   - unowned: the shares of processes in no pod;
//   - unknown: all of ΔE when the GPU had processes but NVML gave no
//     per-process utilisation for the interval (MIG slices, or a driver
//     that does not sample it).
//
// Joules per output token is a pod's charged energy since its model
// server's generated-token counter last grew, divided by that growth: the
// energy of prefill and of intervals with no output is carried to the
// next tokens, so every joule a pod is charged lands on some token.
package energy

import (
	"cmp"
	"context"
	"slices"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/snapshot"
)

// Name is the collector's name in the table.
const Name = "energy"

// Entry is the energy collector's row of the collector table. Its step
// reads the GPUs (energy counters, processes and their utilisation), the
// pods that own the processes and their model servers' token counters.
func Entry() collector.Entry {
	return collector.Entry{
		Name: Name, DefaultOn: true,
		Help: "GPU energy attributed to pods by SM-time share (estimates), idle energy apart, and joules per output token",
		Reads: []snapshot.Section{snapshot.SectionGPUs, snapshot.SectionProcessOwners,
			snapshot.SectionAttribution, snapshot.SectionModelServers},
		Writes: []snapshot.Section{snapshot.SectionEnergy},
		New:    func(collector.Env) (collector.Source, error) { return New(), nil },
	}
}

type containerKey struct{ ns, pod, container, gpu string }
type podKey struct{ ns, pod string }

// gpuState is one GPU's counter at the previous sample and its energy no
// pod is charged with.
type gpuState struct {
	last float64
	seen bool
	snapshot.GPUEnergy
}

// podState is a pod's charged energy and token count when its counter
// last grew, and the ratio computed then.
type podState struct {
	joules, tokens float64
	primed         bool
	perToken       float64
	hasRatio       bool
}

// Source keeps the running totals between samples. Its enrich step runs
// once per tick, never concurrently with itself.
type Source struct {
	gpus       map[string]*gpuState
	containers map[containerKey]float64
	// podJoules is each pod's charged energy over all its containers and
	// GPUs since the agent started.
	podJoules map[podKey]float64
	pods      map[podKey]*podState
}

// New returns a source with no history: the first sample of each GPU only
// sets its baseline.
func New() *Source {
	return &Source{gpus: map[string]*gpuState{}, containers: map[containerKey]float64{},
		podJoules: map[podKey]float64{}, pods: map[podKey]*podState{}}
}

// Collect reads nothing itself; the work is the enrich step's.
func (s *Source) Collect(ctx context.Context) (collector.Reading, error) {
	if err := ctx.Err(); err != nil {
		return collector.Reading{}, err
	}
	return collector.Reading{Enrich: s.enrich}, nil
}

func (s *Source) enrich(_ context.Context, snap *snapshot.Snapshot) (snapshot.Part, error) {
	for i := range snap.GPUs {
		s.charge(&snap.GPUs[i])
	}
	s.forgetGone(snap)
	e := &snapshot.Energy{GPUs: make(map[string]snapshot.GPUEnergy, len(s.gpus))}
	for uuid, g := range s.gpus {
		e.GPUs[uuid] = g.GPUEnergy
	}
	for k, j := range s.containers {
		e.Containers = append(e.Containers, snapshot.ContainerEnergy{Namespace: k.ns, Pod: k.pod, Container: k.container, GPU: k.gpu, Joules: j})
	}
	slices.SortFunc(e.Containers, func(a, b snapshot.ContainerEnergy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod),
			cmp.Compare(a.Container, b.Container), cmp.Compare(a.GPU, b.GPU))
	})
	e.PerOutputToken = s.perToken(snap)
	return func(snap *snapshot.Snapshot) { snap.Energy = e }, nil
}

// charge splits g's energy since the previous sample.
func (s *Source) charge(g *snapshot.GPU) {
	if g.Lost || g.EnergyJoules == nil {
		return
	}
	st := s.gpus[g.UUID]
	if st == nil {
		st = &gpuState{}
		s.gpus[g.UUID] = st
	}
	now := *g.EnergyJoules
	prev, seen := st.last, st.seen
	st.last, st.seen = now, true
	if !seen || now < prev {
		return // a baseline: the first sample, or the driver reloaded
	}
	dE := now - prev
	if len(g.Processes) == 0 {
		st.Idle += dE
		return
	}
	var total float64
	var known bool
	for _, p := range g.Processes {
		if p.SMUtil != nil {
			total += max(*p.SMUtil, 0)
			known = true
		}
	}
	if !known {
		st.Unknown += dE
		return
	}
	scale := 1.0
	if total > 1 {
		scale = 1 / total
	}
	for _, p := range g.Processes {
		var j float64
		if p.SMUtil != nil && *p.SMUtil > 0 {
			j = dE * *p.SMUtil * scale
		}
		if p.Pod == "" {
			st.Unowned += j
			continue
		}
		s.containers[containerKey{p.Namespace, p.Pod, p.Container, g.UUID}] += j
		s.podJoules[podKey{p.Namespace, p.Pod}] += j
	}
	st.Idle += dE * max(0, 1-total)
}

// perToken updates each model server's joules per output token.
func (s *Source) perToken(snap *snapshot.Snapshot) []snapshot.PodEnergyPerToken {
	if snap.Attribution == nil {
		return nil
	}
	var out []snapshot.PodEnergyPerToken
	for i := range snap.Attribution.Pods {
		p := &snap.Attribution.Pods[i]
		ms := p.ModelServer
		if ms == nil || ms.Stale() || !ms.Stats.HasGenerationTokens {
			continue
		}
		k := podKey{p.Namespace, p.Name}
		st := s.pods[k]
		if st == nil {
			st = &podState{}
			s.pods[k] = st
		}
		joules, tokens := s.podJoules[k], ms.Stats.GenerationTokens
		switch {
		case !st.primed || tokens < st.tokens:
			// A baseline: the first reading, or the server restarted.
			st.joules, st.tokens, st.primed = joules, tokens, true
		case tokens > st.tokens:
			st.perToken, st.hasRatio = (joules-st.joules)/(tokens-st.tokens), true
			st.joules, st.tokens = joules, tokens
		}
		if st.hasRatio {
			out = append(out, snapshot.PodEnergyPerToken{Namespace: p.Namespace, Pod: p.Name, Engine: ms.Engine, Joules: st.perToken})
		}
	}
	return out
}

// forgetGone drops the totals of GPUs no longer reported and of pods no
// longer on the node (when the snapshot has the pods' list).
func (s *Source) forgetGone(snap *snapshot.Snapshot) {
	gpus := make(map[string]bool, len(snap.GPUs))
	for _, g := range snap.GPUs {
		gpus[g.UUID] = true
	}
	for uuid := range s.gpus {
		if !gpus[uuid] {
			delete(s.gpus, uuid)
		}
	}
	if snap.Attribution == nil {
		return
	}
	pods := make(map[podKey]bool, len(snap.Attribution.Pods))
	for _, p := range snap.Attribution.Pods {
		pods[podKey{p.Namespace, p.Name}] = true
	}
	for k := range s.containers {
		if !pods[podKey{k.ns, k.pod}] || !gpus[k.gpu] {
			delete(s.containers, k)
		}
	}
	for k := range s.podJoules {
		if !pods[k] {
			delete(s.podJoules, k)
			delete(s.pods, k)
		}
	}
}
