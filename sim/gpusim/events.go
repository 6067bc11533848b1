//go:build cgo

package gpusim

import (
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// eventSet is a simulated NVML event set: a queue per set of events for the
// devices registered on it.
type eventSet struct {
	*mock.EventSet
	devices map[nvml.Device]uint64
	ch      chan nvml.EventData
}

// fillServer sets the library-level functions the mock leaves nil.
func (s *Server) fillServer() {
	s.EventSetCreateFunc = func() (nvml.EventSet, nvml.Return) {
		set := &eventSet{EventSet: &mock.EventSet{}, devices: map[nvml.Device]uint64{}, ch: make(chan nvml.EventData, 256)}
		set.WaitFunc = func(timeoutMs uint32) (nvml.EventData, nvml.Return) {
			select {
			case ev := <-set.ch:
				return ev, nvml.SUCCESS
			case <-time.After(time.Duration(timeoutMs) * time.Millisecond):
				return nvml.EventData{}, nvml.ERROR_TIMEOUT
			}
		}
		set.FreeFunc = func() nvml.Return { return nvml.SUCCESS }
		s.mu.Lock()
		s.events = append(s.events, set)
		s.mu.Unlock()
		return set, nvml.SUCCESS
	}
	s.fillServerGPM()
}

// fillEvents lets a device report and register Xid events.
func (s *Server) fillEvents(g *gpu) {
	d := g.dev
	d.GetSupportedEventTypesFunc = func() (uint64, nvml.Return) {
		return nvml.EventTypeXidCriticalError, nvml.SUCCESS
	}
	d.RegisterEventsFunc = func(types uint64, es nvml.EventSet) nvml.Return {
		set, ok := es.(*eventSet)
		if !ok {
			return nvml.ERROR_INVALID_ARGUMENT
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		set.devices[g.handle] |= types
		return nvml.SUCCESS
	}
}

// InjectXid raises Xid code on GPU i in every event set registered for it.
// An event set whose queue is full drops the event, as a slow reader of a
// real driver would miss it.
func (s *Server) InjectXid(i int, code uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dev := s.gpus[i].handle
	for _, set := range s.events {
		if set.devices[dev]&nvml.EventTypeXidCriticalError == 0 {
			continue
		}
		select {
		case set.ch <- nvml.EventData{Device: dev, EventType: nvml.EventTypeXidCriticalError, EventData: code, GpuInstanceId: 0xFFFFFFFF, ComputeInstanceId: 0xFFFFFFFF}:
		default:
		}
	}
}
