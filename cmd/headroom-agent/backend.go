package main

import (
	"errors"
	"flag"
	"fmt"
	"slices"

	"github.com/headroom-dev/headroom/sim/gpusim"
)

// GPU backends.
const (
	backendNVML = "nvml"
	backendSim  = "sim"
)

// gpuBackend chooses the GPUs the agent samples: the driver's NVML (the
// built-in table's), or simulated ones (NVIDIA's go-nvml mock servers under
// a load model, sim/gpusim) for a machine with no GPU. The simulator is
// wired here, in the command, so the agent package links none of it.
type gpuBackend struct {
	Backend   string
	Profile   string
	Seed      uint64
	Processes int
}

func defaultGPUBackend() gpuBackend {
	return gpuBackend{Backend: backendNVML, Profile: "dgxh100", Seed: 1, Processes: 4}
}

// AddFlags registers the backend's flags.
func (b *gpuBackend) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&b.Backend, "gpu-backend", b.Backend, "GPU backend: nvml (the driver's libnvidia-ml) or sim (simulated GPUs)")
	fs.StringVar(&b.Profile, "sim-profile", b.Profile, fmt.Sprintf("simulated server with --gpu-backend=sim: one of %v", gpusim.Profiles()))
	fs.Uint64Var(&b.Seed, "sim-seed", b.Seed, "seed of the simulated GPUs' UUIDs and load")
	fs.IntVar(&b.Processes, "sim-processes", b.Processes, "compute processes per simulated GPU")
}

// Validate reports every invalid backend option at once.
func (b *gpuBackend) Validate() error {
	var errs []error
	switch b.Backend {
	case backendNVML:
	case backendSim:
		if !slices.Contains(gpusim.Profiles(), b.Profile) {
			errs = append(errs, fmt.Errorf("--sim-profile %q is not one of %v (the simulator needs a cgo build)", b.Profile, gpusim.Profiles()))
		}
	default:
		errs = append(errs, fmt.Errorf("--gpu-backend %q: want %q or %q", b.Backend, backendNVML, backendSim))
	}
	if b.Processes < 0 {
		errs = append(errs, fmt.Errorf("--sim-processes %d is negative", b.Processes))
	}
	return errors.Join(errs...)
}
