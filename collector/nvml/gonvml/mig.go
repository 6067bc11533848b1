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
		out = append(out, m)
	}
	return out, nil
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
