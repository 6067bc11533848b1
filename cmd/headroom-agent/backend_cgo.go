//go:build cgo

package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/sim/gpusim"
)

// apply gives the agent's nvml collector simulated GPUs when the backend
// is sim; their load pattern runs until ctx ends. With nvml it changes
// nothing: the built-in table reads the driver.
func (b *gpuBackend) apply(ctx context.Context, o *agent.Options, logger *slog.Logger) error {
	if b.Backend != backendSim {
		return nil
	}
	sim, err := gpusim.New(gpusim.Options{Profile: b.Profile, Seed: b.Seed})
	if err != nil {
		return err
	}
	sim.Populate(b.Processes, b.Seed)
	go sim.Wander(ctx, time.Second, b.Seed)
	logger.Info("simulated GPUs", "profile", b.Profile, "gpus", sim.NumGPUs(), "model", sim.Name(), "processes_per_gpu", b.Processes)
	o.Collectors = o.Collectors.With(nvml.Entry(gonvml.FromInterface(sim)))
	return nil
}
