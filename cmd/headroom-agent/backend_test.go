package main

import (
	"strings"
	"testing"
)

func TestGPUBackendValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		mutate  func(*gpuBackend)
		wantErr string
	}{
		{"defaults", func(*gpuBackend) {}, ""},
		{"unknown backend", func(b *gpuBackend) { b.Backend = "rocm" }, `--gpu-backend "rocm"`},
		{"unknown sim profile", func(b *gpuBackend) { b.Backend, b.Profile = backendSim, "dgx1" }, "--sim-profile"},
		{"sim profile ignored with nvml", func(b *gpuBackend) { b.Profile = "dgx1" }, ""},
		{"negative processes", func(b *gpuBackend) { b.Processes = -1 }, "--sim-processes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := defaultGPUBackend()
			tc.mutate(&b)
			err := b.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
