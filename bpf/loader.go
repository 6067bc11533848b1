// Package bpf holds the agent's eBPF programs (ztunnel.c, compiled by
// bpf2go into the committed ztunnel_*_bpfel.{go,o}) and their loader.
//
// The programs count what Istio's ztunnel does on a node: TCP payload
// bytes and connections of its sockets, by network namespace and leg, and
// its CPU time per thread. They use only tp_btf programs, which load where
// kprobes and fentry do not (kernel lockdown, kernels without kprobes).
// Each program is loaded and attached on its own, so a kernel lacking one
// tracepoint loses that counter and keeps the others.
package bpf

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// ErrPermission means the kernel refused to load or attach for lack of
// privilege: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) are needed.
var ErrPermission = errors.New("not permitted to load eBPF programs (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)")

// ErrNoProgram means not one program could be loaded and attached.
var ErrNoProgram = errors.New("no eBPF program could be loaded")

// Program names, as in ztunnel.c.
const (
	ProgSendLength  = "send_length"
	ProgRecvLength  = "recv_length"
	ProgSetState    = "set_state"
	ProgSchedSwitch = "sched_switch"
)

// Programs lists every program, in a fixed order.
var programs = []string{ProgSendLength, ProgRecvLength, ProgSetState, ProgSchedSwitch}

// ProgramStatus is one program's state and, with kernel BPF stats on, its
// cost.
type ProgramStatus struct {
	Name string
	// Err says why the program is not running; nil when attached.
	Err error
	// RunCount and RunTime are the kernel's totals since the program was
	// loaded (zero while kernel BPF stats are off).
	RunCount uint64
	RunTime  time.Duration
}

// Ztunnel is the loaded and attached set of programs and their maps.
type Ztunnel struct {
	maps   ztunnelMaps
	progs  map[string]*ebpf.Program
	errs   map[string]error
	links  []link.Link
	stats  io.Closer // kernel BPF stats, on while loaded; nil if refused
	logger *slog.Logger

	mu      sync.Mutex
	cgroups map[uint64]bool
}

// Options tunes Load.
type Options struct {
	// Stats turns on the kernel's BPF run-time statistics
	// (BPF_ENABLE_STATS) while the programs are loaded.
	Stats bool
}

// Load creates the maps, then loads and attaches each program on its
// own. It fails only when the maps cannot be created or no program
// attaches; the reasons of programs that did not are in Programs.
func Load(o Options, logger *slog.Logger) (*Ztunnel, error) {
	// Kernels before 5.11 charge maps to RLIMIT_MEMLOCK.
	_ = rlimit.RemoveMemlock()
	spec, err := loadZtunnel()
	if err != nil {
		return nil, err
	}
	z := &Ztunnel{progs: map[string]*ebpf.Program{}, errs: map[string]error{}, logger: logger, cgroups: map[uint64]bool{}}
	if err := spec.LoadAndAssign(&z.maps, nil); err != nil {
		return nil, classify(fmt.Errorf("creating maps: %w", err))
	}
	replace := map[string]*ebpf.Map{
		ztunnelMapFlows: z.maps.Flows, ztunnelMapOncpu: z.maps.Oncpu,
		ztunnelMapThreadNs: z.maps.ThreadNs, ztunnelMapConnFlow: z.maps.ConnFlow, ztunnelMapZtunnelCgroups: z.maps.ZtunnelCgroups,
	}
	for _, name := range programs {
		if err := z.loadOne(spec, name, replace); err != nil {
			z.errs[name] = classify(err)
			logger.Warn("eBPF program not running", "program", name, "err", z.errs[name])
		}
	}
	if len(z.links) == 0 {
		errs := make([]error, 0, len(z.errs))
		for _, name := range programs {
			errs = append(errs, z.errs[name])
		}
		_ = z.Close()
		return nil, fmt.Errorf("%w: %w", ErrNoProgram, errors.Join(errs...))
	}
	if o.Stats {
		if c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME)); err != nil {
			logger.Warn("kernel BPF stats unavailable: program run time will read 0", "err", err)
		} else {
			z.stats = c
		}
	}
	return z, nil
}

// loadOne loads one program against the shared maps and attaches it.
func (z *Ztunnel) loadOne(spec *ebpf.CollectionSpec, name string, maps map[string]*ebpf.Map) error {
	one := spec.Copy()
	for n := range one.Programs {
		if n != name {
			delete(one.Programs, n)
		}
	}
	var obj struct {
		P *ebpf.Program `ebpf:"prog"`
	}
	one.Programs["prog"] = one.Programs[name]
	delete(one.Programs, name)
	if err := one.LoadAndAssign(&obj, &ebpf.CollectionOptions{MapReplacements: maps}); err != nil {
		return fmt.Errorf("load %s: %w", name, err)
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: obj.P})
	if err != nil {
		_ = obj.P.Close()
		return fmt.Errorf("attach %s: %w", name, err)
	}
	z.progs[name] = obj.P
	z.links = append(z.links, l)
	return nil
}

// classify marks permission errors with ErrPermission.
func classify(err error) error {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// Programs reports every program: attached or why not, and its cost.
func (z *Ztunnel) Programs() []ProgramStatus {
	out := make([]ProgramStatus, 0, len(programs))
	for _, name := range programs {
		st := ProgramStatus{Name: name, Err: z.errs[name]}
		if p := z.progs[name]; p != nil {
			if s, err := p.Stats(); err == nil {
				st.RunCount, st.RunTime = s.RunCount, s.Runtime
			}
		}
		out = append(out, st)
	}
	return out
}

// SetCgroups makes the programs count the sockets and threads of exactly
// these cgroup v2 ids (ztunnel's container cgroups).
func (z *Ztunnel) SetCgroups(ids []uint64) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	var errs []error
	for id := range z.cgroups {
		if !slices.Contains(ids, id) {
			if err := z.maps.ZtunnelCgroups.Delete(id); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				errs = append(errs, err)
				continue
			}
			delete(z.cgroups, id)
		}
	}
	for _, id := range ids {
		if z.cgroups[id] {
			continue
		}
		if err := z.maps.ZtunnelCgroups.Put(id, uint8(1)); err != nil {
			errs = append(errs, fmt.Errorf("cgroup %d: %w", id, err))
			continue
		}
		z.cgroups[id] = true
	}
	return errors.Join(errs...)
}

// Close detaches and unloads everything.
func (z *Ztunnel) Close() error {
	var errs []error
	for _, l := range z.links {
		errs = append(errs, l.Close())
	}
	for _, p := range z.progs {
		errs = append(errs, p.Close())
	}
	errs = append(errs, z.maps.Close())
	if z.stats != nil {
		errs = append(errs, z.stats.Close())
	}
	return errors.Join(errs...)
}
