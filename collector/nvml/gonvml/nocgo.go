//go:build !cgo

// Package gonvml adapts github.com/NVIDIA/go-nvml to the nvml source's
// Library interface. This build has no cgo, so NVML cannot be loaded.
package gonvml

import (
	"context"
	"fmt"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/snapshot"
)

// Library stands in for the adapter in builds without cgo: Init fails.
type Library struct{}

var _ nvml.Library = (*Library)(nil)

// New returns a library whose Init reports that cgo is missing.
func New() *Library { return &Library{} }

// Init always fails: go-nvml needs cgo.
func (*Library) Init() error {
	return fmt.Errorf("%w: agent built without cgo (CGO_ENABLED=0)", nvml.ErrLibraryNotFound)
}

// Shutdown does nothing.
func (*Library) Shutdown() error { return nil }

// System refuses: NVML was never initialised.
func (*Library) System() (snapshot.System, error) { return snapshot.System{}, nvml.ErrNotInitialized }

// Devices refuses: NVML was never initialised.
func (*Library) Devices() ([]nvml.Device, error) { return nil, nvml.ErrNotInitialized }

// WatchEvents refuses: NVML was never initialised.
func (*Library) WatchEvents(context.Context, []nvml.Device) (<-chan nvml.Event, error) {
	return nil, nvml.ErrNotInitialized
}
