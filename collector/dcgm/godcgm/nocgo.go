//go:build !cgo

// Package godcgm adapts github.com/NVIDIA/go-dcgm to the dcgm source's
// Library interface. This build has no cgo, so DCGM cannot be loaded.
package godcgm

import (
	"fmt"
	"time"

	"github.com/headroom-dev/headroom/collector/dcgm"
)

// Library stands in for the adapter in builds without cgo: Connect fails.
type Library struct{}

var _ dcgm.Library = (*Library)(nil)

// New returns a library whose Connect reports that cgo is missing.
func New() *Library { return &Library{} }

// Connect always fails: go-dcgm needs cgo.
func (*Library) Connect(string) error {
	return fmt.Errorf("%w: agent built without cgo (CGO_ENABLED=0)", dcgm.ErrLibraryNotFound)
}

// GPUs refuses: DCGM was never connected.
func (*Library) GPUs() ([]dcgm.GPU, error) { return nil, dcgm.ErrNotConnected }

// Watch refuses: DCGM was never connected.
func (*Library) Watch([]uint, []dcgm.Field, time.Duration) error { return dcgm.ErrNotConnected }

// Latest refuses: DCGM was never connected.
func (*Library) Latest(uint, []dcgm.Field) ([]dcgm.Value, error) { return nil, dcgm.ErrNotConnected }

// Shutdown does nothing.
func (*Library) Shutdown() error { return nil }
