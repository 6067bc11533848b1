//go:build cgo

package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/sim/gpusim"
)

// gpuLibrary returns the NVML library the options choose. The simulator's
// load pattern runs until ctx ends.
func gpuLibrary(ctx context.Context, o *Options, logger *slog.Logger) (nvml.Library, error) {
	if o.GPULibrary != nil {
		return o.GPULibrary, nil
	}
	if o.GPUBackend != BackendSim {
		return gonvml.New(), nil
	}
	sim, err := gpusim.New(gpusim.Options{Profile: o.SimProfile, Seed: o.SimSeed})
	if err != nil {
		return nil, err
	}
	sim.Populate(o.SimProcesses, o.SimSeed)
	go sim.Wander(ctx, time.Second, o.SimSeed)
	logger.Info("simulated GPUs", "profile", o.SimProfile, "gpus", sim.NumGPUs(), "model", sim.Name(), "processes_per_gpu", o.SimProcesses)
	return gonvml.FromInterface(sim), nil
}
