package podresources

import (
	"strings"

	podresv1 "k8s.io/kubelet/pkg/apis/podresources/v1"
)

// draDriver is NVIDIA's DRA driver for GPUs.
const draDriver = "gpu.nvidia.com"

// draDevice maps a DRA claim's device to a GPU. NVIDIA's DRA kubelet plugin
// (github.com/NVIDIA/k8s-dra-driver-gpu, cmd/gpu-kubelet-plugin/deviceinfo.go,
// CanonicalName) names a whole GPU gpu-<minor>, after the /dev/nvidia<minor>
// device node (fixed while the GPU stays on the bus), and a MIG device
// gpu-<minor>-mig-<GPU-instance profile ID>-<placement start>-<placement
// size>, by its parent's minor number. Both are references by minor
// number, not NVML index. Its passthrough devices (gpu-vfio-<n>) hold no
// CUDA context on the node and other drivers' devices are no GPUs: ok is
// false for them, and for a name in no known form.
func draDevice(cr *podresv1.ClaimResource) (DeviceRef, bool) {
	return ParseDRADevice(cr.GetDriverName(), cr.GetDeviceName())
}

// ParseDRADevice parses the device name of a DRA claim result of driver
// (see draDevice for the forms).
func ParseDRADevice(driver, name string) (DeviceRef, bool) {
	if driver != draDriver {
		return DeviceRef{}, false
	}
	rest, ok := strings.CutPrefix(name, "gpu-")
	if !ok {
		return DeviceRef{}, false
	}
	minor, mig, isMIG := strings.Cut(rest, "-mig-")
	n, err := parseIndex(minor)
	if err != nil {
		return DeviceRef{}, false
	}
	ref := DeviceRef{Kind: KindMinor, Index: n, Instance: -1, Replica: -1}
	if !isMIG {
		return ref, true
	}
	parts := strings.Split(mig, "-")
	if len(parts) != 3 {
		return DeviceRef{}, false
	}
	var p [3]int
	for i, s := range parts {
		if p[i], err = parseIndex(s); err != nil {
			return DeviceRef{}, false
		}
	}
	ref.Kind = KindMinorMIG
	ref.MIGPlacement = &MIGPlacement{Profile: p[0], Start: p[1], Size: p[2]}
	return ref, true
}
