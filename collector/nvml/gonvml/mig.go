//go:build cgo

package gonvml

import (
	"fmt"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/headroom-dev/headroom/snapshot"
)

// MIGDevices lists the MIG slices of a GPU in MIG mode, with their memory.
// A GPU without MIG support, or with MIG off, has none.
func (d *Device) MIGDevices() ([]snapshot.MIGDevice, error) {
	if err := d.l.guard(); err != nil {
		return nil, err
	}
	cur, _, ret := d.h.GetMigMode()
	if ret == gonvml.ERROR_NOT_SUPPORTED {
		return nil, nil
	}
	if ret != gonvml.SUCCESS {
		return nil, toErr(ret)
	}
	if cur != gonvml.DEVICE_MIG_ENABLE {
		return nil, nil
	}
	n, ret := d.h.GetMaxMigDeviceCount()
	if ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("max MIG devices: %w", toErr(ret))
	}
	var out []snapshot.MIGDevice
	for i := range n {
		h, ret := d.h.GetMigDeviceHandleByIndex(i)
		if ret == gonvml.ERROR_NOT_FOUND || ret == gonvml.ERROR_INVALID_ARGUMENT {
			continue // empty slot
		}
		if ret != gonvml.SUCCESS {
			return nil, fmt.Errorf("MIG device %d: %w", i, toErr(ret))
		}
		m, err := readMIG(h)
		if err != nil {
			return nil, fmt.Errorf("MIG device %d: %w", i, err)
		}
		if v, ok := d.migSMActive(m.GPUInstanceID); ok {
			m.SMActive = &v
		}
		out = append(out, m)
	}
	d.forgetMIG(out)
	return out, nil
}

// gpmPair is the two GPM sample buffers of one MIG slice.
type gpmPair struct {
	prev, cur gonvml.GpmSample
	havePrev  bool
}

// migSMActive reads the GPM SM activity of the slice with GPU-instance ID
// gi since the previous call (nvmlGpmMigSampleGet), when the GPU has GPM;
// false on the first call for a slice and on any failure.
func (d *Device) migSMActive(gi int) (float64, bool) {
	if !d.gpm.supported {
		return 0, false
	}
	p := d.migGPM[gi]
	if p == nil {
		prev, r1 := d.l.lib.GpmSampleAlloc()
		cur, r2 := d.l.lib.GpmSampleAlloc()
		if r1 != gonvml.SUCCESS || r2 != gonvml.SUCCESS {
			return 0, false
		}
		if d.migGPM == nil {
			d.migGPM = map[int]*gpmPair{}
		}
		p = &gpmPair{prev: prev, cur: cur}
		d.migGPM[gi] = p
	}
	if ret := d.h.GpmMigSampleGet(gi, p.cur); ret != gonvml.SUCCESS {
		p.havePrev = false
		return 0, false
	}
	if !p.havePrev {
		p.prev, p.cur, p.havePrev = p.cur, p.prev, true
		return 0, false
	}
	req := &gonvml.GpmMetricsGetType{NumMetrics: 1, Sample1: p.prev, Sample2: p.cur}
	req.Metrics[0].MetricId = uint32(gonvml.GPM_METRIC_SM_UTIL)
	p.prev, p.cur = p.cur, p.prev
	if ret := d.l.lib.GpmMetricsGet(req); ret != gonvml.SUCCESS || gonvml.Return(req.Metrics[0].NvmlReturn) != gonvml.SUCCESS {
		return 0, false
	}
	return req.Metrics[0].Value / 100, true
}

// forgetMIG frees the GPM samples of slices that are gone.
func (d *Device) forgetMIG(live []snapshot.MIGDevice) {
	for gi, p := range d.migGPM {
		found := false
		for _, m := range live {
			found = found || m.GPUInstanceID == gi
		}
		if !found {
			p.prev.Free()
			p.cur.Free()
			delete(d.migGPM, gi)
		}
	}
}

func readMIG(h gonvml.Device) (snapshot.MIGDevice, error) {
	var m snapshot.MIGDevice
	var ret gonvml.Return
	if m.UUID, ret = h.GetUUID(); ret != gonvml.SUCCESS {
		return m, toErr(ret)
	}
	if m.GPUInstanceID, ret = h.GetGpuInstanceId(); ret != gonvml.SUCCESS {
		return m, toErr(ret)
	}
	if m.ComputeInstanceID, ret = h.GetComputeInstanceId(); ret != gonvml.SUCCESS {
		return m, toErr(ret)
	}
	m.Name, _ = h.GetName()
	if mem, ret := h.GetMemoryInfo(); ret == gonvml.SUCCESS {
		m.Memory = &snapshot.Memory{Total: mem.Total, Used: mem.Used, Free: mem.Free}
	}
	return m, nil
}
