package podresources

import (
	"errors"
	"testing"
)

const uuid = "b8d0b4a2-1c55-4f3e-9a1d-0e6c1e9f2a77"

func TestParseDeviceID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		id   string
		want DeviceRef
	}{
		{"GPU-" + uuid, DeviceRef{Kind: KindGPU, UUID: "GPU-" + uuid, Instance: -1, Replica: -1}},
		{"GPU-" + uuid + "::3", DeviceRef{Kind: KindGPU, UUID: "GPU-" + uuid, Instance: -1, Replica: 3}},
		{"MIG-" + uuid, DeviceRef{Kind: KindMIG, UUID: "MIG-" + uuid, Instance: -1, Replica: -1}},
		{"MIG-" + uuid + "::0", DeviceRef{Kind: KindMIG, UUID: "MIG-" + uuid, Instance: -1, Replica: 0}},
		{"MIG-GPU-" + uuid + "/7/0", DeviceRef{Kind: KindMIG, UUID: "MIG-GPU-" + uuid + "/7/0", Instance: -1, Replica: -1}},
		{"nvidia0", DeviceRef{Kind: KindIndex, Index: 0, Instance: -1, Replica: -1}},
		{"nvidia12", DeviceRef{Kind: KindIndex, Index: 12, Instance: -1, Replica: -1}},
		{"nvidia3/gi2", DeviceRef{Kind: KindIndexMIG, Index: 3, Instance: 2, Replica: -1}},
		{"nvidia1/vgpu4", DeviceRef{Kind: KindIndexVGPU, Index: 1, Instance: 4, Replica: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDeviceID(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseDeviceIDRejects(t *testing.T) {
	t.Parallel()
	for _, id := range []string{
		"", "GPU-", "GPU-xyz", "GPU-" + uuid + "::", "GPU-" + uuid + "::-1", "GPU-" + uuid + "::01",
		"MIG-", "MIG-GPU-" + uuid + "/7", "MIG-GPU-" + uuid + "/a/0",
		"nvidia", "nvidia-1", "nvidia01", "nvidia0/", "nvidia0/gi", "nvidia0/mig1", "nvidia0::1",
		"gpu-0", "amd.com/gpu", "GPU-" + uuid + "x",
	} {
		if got, err := ParseDeviceID(id); !errors.Is(err, ErrDeviceID) {
			t.Errorf("ParseDeviceID(%q) = %+v, %v; want ErrDeviceID", id, got, err)
		}
	}
}

func TestShared(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		"GPU-" + uuid: false, "GPU-" + uuid + "::1": true, "nvidia0/vgpu1": true, "nvidia0/gi1": false,
	} {
		ref, err := ParseDeviceID(id)
		if err != nil {
			t.Fatal(err)
		}
		if ref.Shared() != want {
			t.Errorf("%s: shared = %v, want %v", id, ref.Shared(), want)
		}
	}
}

// FuzzParseDeviceID checks that the parser never panics and that whatever
// it accepts is internally consistent. Seeds are in testdata/fuzz.
func FuzzParseDeviceID(f *testing.F) {
	for _, s := range []string{"GPU-" + uuid, "MIG-" + uuid + "::2", "nvidia0/gi1", "nvidia7/vgpu0", "MIG-GPU-" + uuid + "/1/0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		ref, err := ParseDeviceID(id)
		if err != nil {
			return
		}
		switch ref.Kind {
		case KindGPU, KindMIG:
			if ref.UUID == "" || ref.Index != 0 || ref.Instance != -1 {
				t.Fatalf("%q: inconsistent %+v", id, ref)
			}
		case KindIndex:
			if ref.UUID != "" || ref.Instance != -1 || ref.Replica != -1 {
				t.Fatalf("%q: inconsistent %+v", id, ref)
			}
		case KindIndexMIG, KindIndexVGPU:
			if ref.Instance < 0 || ref.Replica != -1 {
				t.Fatalf("%q: inconsistent %+v", id, ref)
			}
		default:
			t.Fatalf("%q: accepted with kind %v", id, ref.Kind)
		}
	})
}
