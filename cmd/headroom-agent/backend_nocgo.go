//go:build !cgo

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/headroom-dev/headroom/agent"
)

// apply changes nothing with the nvml backend; without cgo there is no
// simulator (Validate refuses it), and NVML's Init reports the missing cgo,
// so the agent runs with the nvml collector failed.
func (b *gpuBackend) apply(_ context.Context, _ *agent.Options, _ *slog.Logger) error {
	if b.Backend == backendSim {
		return errors.New("--gpu-backend=sim needs a cgo build")
	}
	return nil
}
