package godcgm_test

import (
	"errors"
	"testing"

	"github.com/headroom-dev/headroom/collector/dcgm"
	"github.com/headroom-dev/headroom/collector/dcgm/godcgm"
)

// TestConnectWithoutLibrary runs the path every development and CI machine
// takes: libdcgm.so.4 is not installed (or cgo is off), so Connect must
// fail with ErrLibraryNotFound, again on every retry, without crashing, and
// every other call must be refused before reaching go-dcgm.
func TestConnectWithoutLibrary(t *testing.T) {
	for _, tc := range []struct{ name, address string }{
		{"embedded", ""},
		{"standalone tcp", "localhost:5555"},
		{"standalone socket", "unix:///run/nvidia-dcgm/hostengine.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lib := godcgm.New()
			for try := range 3 {
				err := lib.Connect(tc.address)
				if err == nil {
					_ = lib.Shutdown()
					t.Skip("a DCGM host engine answered: this test covers machines without libdcgm")
				}
				if !errors.Is(err, dcgm.ErrLibraryNotFound) {
					if try == 0 && errors.Is(err, dcgm.ErrUnreachable) {
						t.Skipf("libdcgm is installed here (%v): this test covers machines without it", err)
					}
					t.Fatalf("try %d: Connect error %v, want ErrLibraryNotFound", try, err)
				}
			}
			if _, err := lib.GPUs(); !errors.Is(err, dcgm.ErrNotConnected) {
				t.Errorf("GPUs after a failed Connect: %v, want ErrNotConnected", err)
			}
			if err := lib.Watch([]uint{0}, dcgm.ProfilingFields(), 0); !errors.Is(err, dcgm.ErrNotConnected) {
				t.Errorf("Watch after a failed Connect: %v, want ErrNotConnected", err)
			}
			if _, err := lib.Latest(0, dcgm.ProfilingFields()); !errors.Is(err, dcgm.ErrNotConnected) {
				t.Errorf("Latest after a failed Connect: %v, want ErrNotConnected", err)
			}
			if err := lib.Shutdown(); err != nil {
				t.Errorf("Shutdown after a failed Connect: %v", err)
			}
		})
	}
}
