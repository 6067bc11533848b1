package pods

import (
	"context"
	"errors"
	"fmt"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/cgroups"
	"github.com/headroom-dev/headroom/collector/cri"
	"github.com/headroom-dev/headroom/snapshot"
)

// Collect reads the cgroups of the GPU pods' containers; its enrich step
// joins the cached views with this tick's GPU processes. It fails only
// while neither the kubelet nor the runtime has ever answered; a view that
// answered once and then stopped is used and reported stale.
func (s *Source) Collect(ctx context.Context) (collector.Reading, error) {
	alloc, rt := s.kubelet.View(), s.runtime.View()
	if alloc == nil && rt == nil {
		kerr, rerr := s.kubelet.Status().LastErr, s.runtime.Status().LastErr
		return collector.Reading{}, fmt.Errorf("%w (kubelet: %v; runtime: %v)", ErrNoViews, kerr, rerr)
	}
	memory := map[string]*snapshot.ContainerMemory{}
	if rt != nil {
		s.mu.Lock()
		pods := assignedPods(alloc, rt)
		for uid := range s.procPods {
			pods[uid] = true
		}
		s.mu.Unlock()
		for uid := range pods {
			if err := ctx.Err(); err != nil {
				return collector.Reading{}, err
			}
			s.readPod(rt, uid, memory)
		}
	}
	in := joinInput{alloc: alloc, runtime: rt, resolve: s.resolve, memory: memory, sidecars: s.sidecars}
	kst, rst := s.kubelet.Status(), s.runtime.Status()
	return collector.Reading{Enrich: func(ctx context.Context, snap *snapshot.Snapshot) (snapshot.Part, error) {
		a, procs, err := s.join(ctx, snap.GPUs, in)
		if err != nil {
			return nil, err
		}
		a.Kubelet = snapshot.SourceFreshness{LastSuccess: kst.LastSuccess, StaleSince: kst.StaleSince}
		a.Runtime = snapshot.SourceFreshness{LastSuccess: rst.LastSuccess, StaleSince: rst.StaleSince}
		return func(snap *snapshot.Snapshot) {
			setOwners(snap.GPUs, procs)
			snap.Attribution = a
		}, nil
	}}, nil
}

// join is the enrich step: it attributes this tick's GPU processes
// (resolving new PIDs through /proc) and keeps the PID cache in step. It
// only reads gpus.
func (s *Source) join(ctx context.Context, gpus []snapshot.GPU, in joinInput) (*snapshot.Attribution, []procOwner, error) {
	s.beginTick()
	a, procs, stale := join(gpus, in)
	if err := ctx.Err(); err != nil {
		// Out of time: keep the PID cache as it was rather than forget
		// PIDs this join did not reach.
		return nil, nil, err
	}
	s.endTick(a)
	if stale {
		// A process in a container the views do not know yet: ask sooner
		// than the interval (the loops keep their minimum gap).
		s.kubelet.Trigger()
		s.runtime.Trigger()
	}
	return a, procs, nil
}

// readPod reads the cgroup of every container of a pod. A container whose
// cgroup cannot be found or read is left without memory readings.
func (s *Source) readPod(rt *cri.View, uid string, out map[string]*snapshot.ContainerMemory) {
	pod, ok := rt.Pod(uid)
	if !ok {
		return
	}
	for _, c := range pod.Containers {
		dir, err := s.cg.FindContainer(uid, c.ID)
		if err != nil {
			s.logger.Debug("container cgroup not found", "pod", pod.Namespace+"/"+pod.Name, "container", c.Name, "err", err)
			continue
		}
		st, err := s.cg.Stats(dir)
		if err != nil {
			s.logger.Debug("reading container cgroup", "pod", pod.Namespace+"/"+pod.Name, "container", c.Name, "err", err)
			continue
		}
		out[c.ID] = &snapshot.ContainerMemory{WorkingSet: st.WorkingSet, Anon: st.Anon, File: st.File, CPUSeconds: st.CPUSeconds}
	}
}

// beginTick starts a join: PIDs not resolved during it are forgotten at
// endTick, so the cache follows the GPU processes.
func (s *Source) beginTick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = map[uint32]bool{}
}

// resolve maps a PID to its container, reading /proc only for PIDs not
// seen at the previous tick. An exited PID is not cached.
func (s *Source) resolve(pid uint32) (cgroups.Ref, error) {
	s.mu.Lock()
	e, ok := s.pids[pid]
	s.mu.Unlock()
	if !ok {
		ref, err := s.cg.ContainerOf(pid)
		if errors.Is(err, cgroups.ErrProcessGone) {
			return ref, err
		}
		e = pidEntry{ref: ref, err: err}
	}
	s.mu.Lock()
	s.pids[pid] = e
	s.seen[pid] = true
	s.mu.Unlock()
	return e.ref, e.err
}

// endTick forgets PIDs that are gone and remembers which pods run GPU
// processes.
func (s *Source) endTick(a *snapshot.Attribution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid := range s.pids {
		if !s.seen[pid] {
			delete(s.pids, pid)
		}
	}
	s.procPods = map[string]bool{}
	for _, p := range a.Pods {
		for _, c := range p.Containers {
			if len(c.GPUs) > 0 {
				s.procPods[p.UID] = true
			}
		}
	}
	live := map[string]bool{}
	for _, p := range a.Pods {
		for _, c := range p.Containers {
			live[c.ID] = true
		}
	}
	s.cg.Forget(func(id string) bool { return live[id] })
}
