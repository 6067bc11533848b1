// Package collector runs the agent's data sources.
//
// Each source lives in its own package and is listed in an explicit
// name → factory table (table.go) with a default-on bit and a
// --collector.<name> switch, in the manner of node_exporter. Sources take a
// context; the Runner gives each one its own deadline and a failing, hanging
// or panicking source marks only itself failed.
package collector

import (
	"context"
	"log/slog"

	"github.com/headroom-dev/headroom/collector/dcgm"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/collector/ztunnel"
	"github.com/headroom-dev/headroom/snapshot"
)

// Source is one data source of the agent.
//
// Collect is called once per sampling tick, never concurrently with itself.
// It returns the part of the snapshot the source owns. It must honour ctx:
// when the deadline passes its result is discarded.
type Source interface {
	Collect(ctx context.Context) (snapshot.Part, error)
}

// Deps is what factories may use to build a source.
type Deps struct {
	// Ctx bounds background goroutines a source starts (event watchers).
	Ctx    context.Context
	Logger *slog.Logger
	Node   string
	// GPU is the GPU backend the NVML source reads; nil means none.
	GPU nvml.Library
	// Pods configures the attribution source.
	Pods pods.Options
	// DCGM configures the DCGM source.
	DCGM dcgm.Options
	// ModelServer configures the model-server source.
	ModelServer modelserver.Options
	// Ztunnel configures the ztunnel sources.
	Ztunnel ztunnel.Options
}

// Factory builds a source. A factory error disables the source for the
// agent's lifetime; it is reported as a failed collector on every tick.
type Factory func(Deps) (Source, error)
