//go:build !cgo

package agent

import (
	"context"
	"log/slog"

	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
)

// gpuLibrary returns the NVML library the options choose. Without cgo there
// is no simulator (Validate refuses it) and NVML's Init reports the missing
// cgo, so the agent runs with the nvml collector failed.
func gpuLibrary(_ context.Context, o *Options, _ *slog.Logger) (nvml.Library, error) {
	if o.GPULibrary != nil {
		return o.GPULibrary, nil
	}
	return gonvml.New(), nil
}
