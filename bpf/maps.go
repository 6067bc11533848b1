package bpf

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// Leg is which side of ztunnel a socket is on, as the kernel side can
// tell from ports and the socket mark.
type Leg uint8

// Legs, as in ztunnel.c.
const (
	// LegOther: no ztunnel port or mark; the agent calls it app inside a
	// pod's network namespace and control in ztunnel's own.
	LegOther Leg = 0
	// LegApp: local or remote port 15001 (outbound) or 15006 (inbound).
	LegApp Leg = 1
	// LegHBONE: port 15008 or SO_MARK 0x539.
	LegHBONE Leg = 2
)

// String names the leg.
func (l Leg) String() string {
	switch l {
	case LegApp:
		return "app"
	case LegHBONE:
		return "hbone"
	default:
		return "other"
	}
}

// FlowKey is one network namespace and leg.
type FlowKey struct {
	// Netns is the network namespace's inode (as in /proc/<pid>/ns/net).
	Netns uint32
	Leg   Leg
}

// FlowTotals are cumulative counts since the programs were loaded.
type FlowTotals struct {
	BytesSent, BytesReceived             uint64
	ConnectionsOpened, ConnectionsClosed uint64
}

// Active is connections opened and not yet closed.
func (f FlowTotals) Active() uint64 {
	if f.ConnectionsClosed > f.ConnectionsOpened {
		return 0
	}
	return f.ConnectionsOpened - f.ConnectionsClosed
}

// Add returns f plus g.
func (f FlowTotals) Add(g FlowTotals) FlowTotals {
	return FlowTotals{
		BytesSent: f.BytesSent + g.BytesSent, BytesReceived: f.BytesReceived + g.BytesReceived,
		ConnectionsOpened: f.ConnectionsOpened + g.ConnectionsOpened, ConnectionsClosed: f.ConnectionsClosed + g.ConnectionsClosed,
	}
}

// sumFlow adds up one key's per-CPU values.
func sumFlow(perCPU []ztunnelFlowVal) FlowTotals {
	var t FlowTotals
	for _, v := range perCPU {
		t.BytesSent += v.BytesSent
		t.BytesReceived += v.BytesRecv
		t.ConnectionsOpened += v.Opened
		t.ConnectionsClosed += v.Closed
	}
	return t
}

// sumNS adds up one thread's per-CPU nanoseconds.
func sumNS(perCPU []uint64) time.Duration {
	var t uint64
	for _, v := range perCPU {
		t += v
	}
	return time.Duration(t)
}

// Flows reads the flow counters, summed over CPUs.
func (z *Ztunnel) Flows() (map[FlowKey]FlowTotals, error) {
	out := map[FlowKey]FlowTotals{}
	var (
		k      ztunnelFlowKey
		perCPU []ztunnelFlowVal
	)
	it := z.maps.Flows.Iterate()
	for it.Next(&k, &perCPU) {
		key := FlowKey{Netns: k.Netns, Leg: Leg(k.Leg)}
		out[key] = out[key].Add(sumFlow(perCPU))
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading flows: %w", err)
	}
	return out, nil
}

// Threads reads CPU time per thread ID, summed over CPUs. A thread's
// current run is counted when it is switched out.
func (z *Ztunnel) Threads() (map[uint32]time.Duration, error) {
	out := map[uint32]time.Duration{}
	var (
		tid    uint32
		perCPU []uint64
	)
	it := z.maps.ThreadNs.Iterate()
	for it.Next(&tid, &perCPU) {
		out[tid] = sumNS(perCPU)
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("reading threads: %w", err)
	}
	return out, nil
}

// ForgetThreads deletes the entries of threads that exited, so that the
// map holds live threads only.
func (z *Ztunnel) ForgetThreads(tids []uint32) error {
	var errs []error
	for _, tid := range tids {
		if err := z.maps.ThreadNs.Delete(tid); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
