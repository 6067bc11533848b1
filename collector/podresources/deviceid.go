package podresources

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DeviceKind says how a device ID names its GPU.
type DeviceKind int

// Device ID forms.
const (
	// KindGPU is a whole GPU by UUID: GPU-<uuid>, or GPU-<uuid>::<n> for
	// replica n of a time-sliced or MPS-shared GPU.
	KindGPU DeviceKind = iota + 1
	// KindMIG is a MIG device by UUID: MIG-<uuid>, MIG-<uuid>::<n> (EKS),
	// or the pre-R470 form MIG-GPU-<uuid>/<gi>/<ci>.
	KindMIG
	// KindIndex is a GPU by NVML index, GKE's nvidia<N>.
	KindIndex
	// KindIndexMIG is a GKE MIG partition, nvidia<N>/gi<M>.
	KindIndexMIG
	// KindIndexVGPU is a GKE shared GPU, nvidia<N>/vgpu<M>.
	KindIndexVGPU
	// KindMinor is a GPU by device-node minor number (/dev/nvidia<N>), as
	// NVIDIA's DRA driver names it: gpu-<N>.
	KindMinor
	// KindMinorMIG is a MIG device of the GPU with minor number N, as
	// NVIDIA's DRA driver names it: gpu-<N>-mig-<profile>-<start>-<size>
	// (MIGPlacement holds the last three).
	KindMinorMIG
)

func (k DeviceKind) String() string {
	switch k {
	case KindGPU:
		return "gpu"
	case KindMIG:
		return "mig"
	case KindIndex:
		return "index"
	case KindIndexMIG:
		return "index-mig"
	case KindIndexVGPU:
		return "index-vgpu"
	case KindMinor:
		return "minor"
	case KindMinorMIG:
		return "minor-mig"
	}
	return "unknown"
}

// DeviceRef is a parsed device-plugin device ID.
type DeviceRef struct {
	Kind DeviceKind
	// UUID is the GPU-… or MIG-… UUID (KindGPU, KindMIG).
	UUID string
	// Index is the NVML GPU index (KindIndex*) or minor number (KindMinor).
	Index int
	// Instance is the GPU-instance ID (KindIndexMIG) or vGPU slot
	// (KindIndexVGPU); -1 otherwise.
	Instance int
	// Replica is the share of a time-sliced or MPS GPU (the n of ::n); -1
	// when the device is not shared this way.
	Replica int
	// MIGPlacement is the MIG device's GPU-instance profile and placement
	// (KindMinorMIG); nil otherwise.
	MIGPlacement *MIGPlacement
}

// MIGPlacement is where a MIG device sits on its GPU: its GPU-instance
// profile ID (NVML_GPU_INSTANCE_PROFILE_*) and the first and count of the
// memory slices it holds.
type MIGPlacement struct {
	Profile, Start, Size int
}

// Shared reports whether several containers may hold the same GPU through
// this kind of ID.
func (d DeviceRef) Shared() bool { return d.Replica >= 0 || d.Kind == KindIndexVGPU }

// ErrDeviceID marks a device ID in no known form.
var ErrDeviceID = errors.New("unrecognised device ID")

// ParseDeviceID parses one device ID as the NVIDIA device plugin (and GKE's
// and EKS's variants) report it in pod-resources.
func ParseDeviceID(id string) (DeviceRef, error) {
	ref := DeviceRef{Instance: -1, Replica: -1}
	base, replica, shared := strings.Cut(id, "::")
	if shared {
		n, err := parseIndex(replica)
		if err != nil {
			return DeviceRef{}, fmt.Errorf("%w %q: replica %q: %w", ErrDeviceID, id, replica, err)
		}
		ref.Replica = n
	}
	switch {
	case strings.HasPrefix(base, "GPU-"):
		if !validUUID(base[len("GPU-"):]) {
			return DeviceRef{}, fmt.Errorf("%w %q: bad GPU UUID", ErrDeviceID, id)
		}
		ref.Kind, ref.UUID = KindGPU, base
	case strings.HasPrefix(base, "MIG-GPU-"):
		// Pre-R470: MIG-GPU-<uuid>/<gi>/<ci>.
		parts := strings.Split(base[len("MIG-"):], "/")
		if len(parts) != 3 || !validUUID(parts[0][len("GPU-"):]) || !isIndex(parts[1]) || !isIndex(parts[2]) {
			return DeviceRef{}, fmt.Errorf("%w %q: bad legacy MIG ID", ErrDeviceID, id)
		}
		ref.Kind, ref.UUID = KindMIG, base
	case strings.HasPrefix(base, "MIG-"):
		if !validUUID(base[len("MIG-"):]) {
			return DeviceRef{}, fmt.Errorf("%w %q: bad MIG UUID", ErrDeviceID, id)
		}
		ref.Kind, ref.UUID = KindMIG, base
	case strings.HasPrefix(base, "nvidia"):
		if shared {
			return DeviceRef{}, fmt.Errorf("%w %q: GKE IDs take no ::replica", ErrDeviceID, id)
		}
		return parseGKE(id, ref)
	default:
		return DeviceRef{}, fmt.Errorf("%w %q", ErrDeviceID, id)
	}
	return ref, nil
}

// parseGKE parses nvidia<N>, nvidia<N>/gi<M> and nvidia<N>/vgpu<M>.
func parseGKE(id string, ref DeviceRef) (DeviceRef, error) {
	gpu, sub, hasSub := strings.Cut(id[len("nvidia"):], "/")
	n, err := parseIndex(gpu)
	if err != nil {
		return DeviceRef{}, fmt.Errorf("%w %q: GPU index: %w", ErrDeviceID, id, err)
	}
	ref.Index, ref.Kind = n, KindIndex
	if !hasSub {
		return ref, nil
	}
	var prefix string
	switch {
	case strings.HasPrefix(sub, "gi"):
		ref.Kind, prefix = KindIndexMIG, "gi"
	case strings.HasPrefix(sub, "vgpu"):
		ref.Kind, prefix = KindIndexVGPU, "vgpu"
	default:
		return DeviceRef{}, fmt.Errorf("%w %q: want /gi<M> or /vgpu<M>", ErrDeviceID, id)
	}
	m, err := parseIndex(sub[len(prefix):])
	if err != nil {
		return DeviceRef{}, fmt.Errorf("%w %q: %s index: %w", ErrDeviceID, id, prefix, err)
	}
	ref.Instance = m
	return ref, nil
}

// parseIndex parses a small non-negative decimal without sign or padding.
func parseIndex(s string) (int, error) {
	if !isIndex(s) {
		return 0, errors.New("not a non-negative integer")
	}
	return strconv.Atoi(s)
}

func isIndex(s string) bool {
	if s == "" || len(s) > 6 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// validUUID accepts the 8-4-4-4-12 hex form NVML prints.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
	}
	return true
}
