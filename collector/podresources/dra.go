package podresources

import (
	"strings"

	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// draDriver is NVIDIA's DRA driver for GPUs.
const draDriver = "gpu.nvidia.com"

// draDevice maps a DRA claim's device to a GPU. NVIDIA's DRA kubelet plugin
// names a whole GPU gpu-<minor>, after the /dev/nvidia<minor> device node
// (fixed while the GPU stays on the bus), so the reference is by minor
// number, not NVML index. Its MIG devices, and other drivers' devices, are
// not mapped: ok is false.
func draDevice(cr *podresv1.ClaimResource) (DeviceRef, bool) {
	if cr.GetDriverName() != draDriver {
		return DeviceRef{}, false
	}
	minor, ok := strings.CutPrefix(cr.GetDeviceName(), "gpu-")
	if !ok {
		return DeviceRef{}, false
	}
	n, err := parseIndex(minor)
	if err != nil {
		return DeviceRef{}, false
	}
	return DeviceRef{Kind: KindMinor, Index: n, Instance: -1, Replica: -1}, true
}
