package nvml

import (
	"context"
	"log/slog"
	"maps"
	"sync"
)

// Xid codes with a meaning the agent acts on.
const (
	// XidFallenOffBus is Xid 79: the GPU has fallen off the bus.
	XidFallenOffBus = 79
)

// xidCounter counts Xid events per GPU index and code. It is written by the
// event goroutine and read by Collect.
type xidCounter struct {
	mu sync.Mutex
	by map[int]map[uint64]uint64
}

func newXIDCounter() *xidCounter {
	return &xidCounter{by: make(map[int]map[uint64]uint64)}
}

func (x *xidCounter) add(index int, code uint64) (first bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.by[index]
	if m == nil {
		m = make(map[uint64]uint64)
		x.by[index] = m
	}
	m[code]++
	return m[code] == 1
}

// counts returns a copy of the counts of one GPU, or nil if it had none.
func (x *xidCounter) counts(index int) map[uint64]uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.by[index]) == 0 {
		return nil
	}
	return maps.Clone(x.by[index])
}

// consume counts events until the channel closes. The first event of each
// code on each GPU is logged; repeats only count, so an Xid storm cannot
// flood the log.
func (x *xidCounter) consume(events <-chan Event, logger *slog.Logger) {
	for ev := range events {
		if !x.add(ev.Index, ev.Xid) {
			continue
		}
		level := slog.LevelWarn
		if ev.Xid == XidFallenOffBus {
			level = slog.LevelError
		}
		logger.Log(context.Background(), level, "Xid error (first of this code on this GPU; repeats are counted in headroom_gpu_xid_errors_total)", "gpu", ev.Index, "xid", ev.Xid)
	}
}
