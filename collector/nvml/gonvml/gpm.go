//go:build cgo

package gonvml

import (
	"fmt"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/headroom-dev/headroom/collector/nvml"
)

// gpmState holds the two GPM sample buffers of a device: each call fills
// cur, computes metrics over (prev, cur), then swaps them.
type gpmState struct {
	checked   bool
	supported bool
	prev, cur gonvml.GpmSample
	havePrev  bool
	// req is the metrics request, reused: it holds room for every GPM
	// metric (about 28 KB), which was the agent's largest allocation,
	// once a second per GPU.
	req gonvml.GpmMetricsGetType
}

// GPM returns SM activity and occupancy between this call and the previous
// one. GPM exists on Hopper and later; elsewhere it answers ErrNotSupported.
func (d *Device) GPM() (nvml.GPM, error) {
	if err := d.l.guard(); err != nil {
		return nvml.GPM{}, err
	}
	g := &d.gpm
	if !g.checked {
		if err := d.initGPM(); err != nil {
			return nvml.GPM{}, err
		}
	}
	if !g.supported {
		return nvml.GPM{}, fmt.Errorf("GPM: %w", nvml.ErrNotSupported)
	}
	if ret := d.h.GpmSampleGet(g.cur); ret != gonvml.SUCCESS {
		g.havePrev = false
		return nvml.GPM{}, fmt.Errorf("GPM sample: %w", toErr(ret))
	}
	if !g.havePrev {
		g.prev, g.cur, g.havePrev = g.cur, g.prev, true
		return nvml.GPM{}, nvml.ErrNoData
	}
	req := &g.req
	req.NumMetrics, req.Sample1, req.Sample2 = 2, g.prev, g.cur
	req.Metrics[0] = gonvml.GpmMetric{MetricId: uint32(gonvml.GPM_METRIC_SM_UTIL)}
	req.Metrics[1] = gonvml.GpmMetric{MetricId: uint32(gonvml.GPM_METRIC_SM_OCCUPANCY)}
	g.prev, g.cur = g.cur, g.prev
	if ret := d.l.lib.GpmMetricsGet(req); ret != gonvml.SUCCESS {
		return nvml.GPM{}, fmt.Errorf("GPM metrics: %w", toErr(ret))
	}
	for _, m := range req.Metrics[:2] {
		if r := gonvml.Return(m.NvmlReturn); r != gonvml.SUCCESS {
			return nvml.GPM{}, fmt.Errorf("GPM metric %d: %w", m.MetricId, toErr(r))
		}
	}
	return nvml.GPM{SMActive: req.Metrics[0].Value / 100, SMOccupancy: req.Metrics[1].Value / 100}, nil
}

// initGPM checks support once and allocates the two sample buffers.
func (d *Device) initGPM() error {
	g := &d.gpm
	support, ret := d.h.GpmQueryDeviceSupport()
	if ret != gonvml.SUCCESS {
		return fmt.Errorf("GPM support query: %w", toErr(ret))
	}
	g.checked = true
	if support.IsSupportedDevice == 0 {
		return nil
	}
	var r1, r2 gonvml.Return
	g.prev, r1 = d.l.lib.GpmSampleAlloc()
	g.cur, r2 = d.l.lib.GpmSampleAlloc()
	if r1 != gonvml.SUCCESS || r2 != gonvml.SUCCESS {
		g.checked = false
		return fmt.Errorf("GPM sample alloc: %w", toErr(max(r1, r2)))
	}
	g.supported = true
	return nil
}
