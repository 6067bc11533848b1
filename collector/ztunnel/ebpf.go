package ztunnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/bpf"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/snapshot"
)

// Counters is what the eBPF source reads: *bpf.Ztunnel, or a fake.
type Counters interface {
	SetCgroups(ids []uint64) error
	Flows() (map[bpf.FlowKey]bpf.FlowTotals, error)
	Threads() (map[uint32]time.Duration, error)
	ForgetThreads(tids []uint32) error
	Programs() []bpf.ProgramStatus
	Close() error
}

// EBPFSource reads the eBPF programs' counters.
type EBPFSource struct {
	finder   *Finder
	counters Counters
	logger   *slog.Logger
	threads  map[uint32]threadInfo
}

type threadInfo struct {
	pid  uint32
	name string
}

// NewEBPF loads and attaches the programs. Without the privileges (or a
// kernel with BTF and the tracepoints) it fails, which the agent logs once
// and reports as the source failing on every tick.
func NewEBPF(f *Finder, o Options, logger *slog.Logger) (*EBPFSource, error) {
	z, err := bpf.Load(bpf.Options{Stats: o.BPFStats}, logger)
	if err != nil {
		if errors.Is(err, bpf.ErrPermission) {
			return nil, fmt.Errorf("eBPF unavailable, ztunnel bytes, connections and per-thread CPU will not be reported (grant CAP_BPF and CAP_PERFMON, see docs/mesh.md): %w", err)
		}
		return nil, fmt.Errorf("eBPF unavailable: %w", err)
	}
	return NewEBPFWith(f, z, logger), nil
}

// NewEBPFWith reads counters that are already loaded.
func NewEBPFWith(f *Finder, c Counters, logger *slog.Logger) *EBPFSource {
	return &EBPFSource{finder: f, counters: c, logger: logger, threads: map[uint32]threadInfo{}}
}

// Close detaches the programs.
func (s *EBPFSource) Close() error { return s.counters.Close() }

// Collect points the programs at ztunnel's cgroups and reads what they
// counted. It owns Mesh.Ztunnel.Traffic, and makes Mesh.Ztunnel when the
// ztunnel source is off.
func (s *EBPFSource) Collect(ctx context.Context) (collector.Reading, error) {
	found, err := s.finder.Find()
	if err != nil {
		return collector.Reading{}, err
	}
	ids := make([]uint64, 0, len(found.Cgroups))
	for _, dir := range found.Cgroups {
		if id, err := bpf.CgroupID(filepath.Join(s.finder.root, dir)); err == nil {
			ids = append(ids, id)
		}
	}
	if err := s.counters.SetCgroups(ids); err != nil {
		return collector.Reading{}, err
	}
	flows, err := s.counters.Flows()
	if err != nil {
		return collector.Reading{}, err
	}
	threads, err := s.counters.Threads()
	if err != nil {
		return collector.Reading{}, err
	}
	if err := ctx.Err(); err != nil {
		return collector.Reading{}, err
	}
	netns := make([]uint32, 0, len(flows))
	for k := range flows {
		netns = append(netns, k.Netns)
	}
	pods := s.finder.Pods(netns)
	t := &snapshot.ZtunnelTraffic{Flows: fold(found, pods, flows), Threads: s.threadList(threads), Programs: programs(s.counters.Programs())}
	return collector.Reading{Own: func(snap *snapshot.Snapshot) {
		if snap.Mesh == nil {
			snap.Mesh = &snapshot.Mesh{}
		}
		if snap.Mesh.Ztunnel == nil {
			snap.Mesh.Ztunnel = &snapshot.Ztunnel{Present: len(found.PIDs) > 0 || len(found.Cgroups) > 0, Namespace: found.Namespace, Pod: found.Pod, PIDs: found.PIDs}
		}
		snap.Mesh.Ztunnel.Traffic = t
	}}, nil
}

// fold turns the kernel's (namespace, leg) counters into flows by pod and
// leg: a socket with no ztunnel port or mark is the app side inside a
// pod's namespace and control traffic inside ztunnel's own.
func fold(found Found, pods map[uint32]PodRef, flows map[bpf.FlowKey]bpf.FlowTotals) []snapshot.ZtunnelFlow {
	type key struct {
		netns uint32
		leg   string
	}
	sum := map[key]bpf.FlowTotals{}
	for k, v := range flows {
		leg := snapshot.LegApp
		switch {
		case k.Leg == bpf.LegHBONE:
			leg = snapshot.LegHBONE
		case k.Leg == bpf.LegOther && found.OwnNetns[k.Netns]:
			leg = snapshot.LegControl
		}
		kk := key{k.Netns, leg}
		sum[kk] = sum[kk].Add(v)
	}
	out := make([]snapshot.ZtunnelFlow, 0, len(sum))
	for k, v := range sum {
		p := pods[k.netns]
		out = append(out, snapshot.ZtunnelFlow{
			Namespace: p.Namespace, Pod: p.Name, UID: p.UID, Netns: k.netns, Leg: k.leg,
			BytesSent: v.BytesSent, BytesReceived: v.BytesReceived, Opened: v.ConnectionsOpened, Closed: v.ConnectionsClosed,
		})
	}
	slices.SortFunc(out, func(a, b snapshot.ZtunnelFlow) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Pod, b.Pod), cmp.Compare(a.Netns, b.Netns), cmp.Compare(a.Leg, b.Leg))
	})
	return out
}

// threadList names each thread and forgets those that exited.
func (s *EBPFSource) threadList(threads map[uint32]time.Duration) []snapshot.ZtunnelThread {
	out := make([]snapshot.ZtunnelThread, 0, len(threads))
	var gone []uint32
	for tid, d := range threads {
		info, ok := s.threads[tid]
		if !ok {
			var err error
			if info, err = s.threadInfo(tid); err != nil {
				gone = append(gone, tid)
				continue
			}
			s.threads[tid] = info
		}
		out = append(out, snapshot.ZtunnelThread{PID: info.pid, TID: tid, Name: info.name, CPUSeconds: d.Seconds()})
	}
	for tid := range s.threads {
		if _, ok := threads[tid]; !ok {
			delete(s.threads, tid)
		}
	}
	if len(gone) > 0 {
		if err := s.counters.ForgetThreads(gone); err != nil {
			s.logger.Debug("forgetting exited threads", "err", err)
		}
	}
	slices.SortFunc(out, func(a, b snapshot.ZtunnelThread) int { return cmp.Compare(a.TID, b.TID) })
	return out
}

// threadInfo reads a thread's process and name from /proc/<tid>/status.
func (s *EBPFSource) threadInfo(tid uint32) (threadInfo, error) {
	b, err := os.ReadFile(filepath.Join(s.finder.procRoot, strconv.FormatUint(uint64(tid), 10), "status"))
	if err != nil {
		return threadInfo{}, err
	}
	return parseStatus(string(b)), nil
}

func parseStatus(status string) threadInfo {
	var info threadInfo
	for _, line := range strings.Split(status, "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			info.name = v
		case "Tgid":
			n, _ := strconv.ParseUint(v, 10, 32)
			info.pid = uint32(n)
		}
	}
	return info
}

func programs(ps []bpf.ProgramStatus) []snapshot.BPFProgram {
	out := make([]snapshot.BPFProgram, 0, len(ps))
	for _, p := range ps {
		bp := snapshot.BPFProgram{Name: p.Name, Attached: p.Err == nil, RunCount: p.RunCount, RunSeconds: p.RunTime.Seconds()}
		if p.Err != nil {
			bp.Err = p.Err.Error()
		}
		out = append(out, bp)
	}
	return out
}
