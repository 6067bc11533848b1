// Package builtin is the agent's collector table: every collector it ships,
// one line each, in the order they are built, their parts filled in, their
// enrich steps run and their series exported. Each collector's package
// says everything else about it in its Entry (name, default-on bit, help,
// options and flags, the snapshot sections it owns, reads and writes, the
// sources it uses); collector.Table.Check holds the order to those
// declarations.
package builtin

import (
	"slices"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/dcgm"
	"github.com/headroom-dev/headroom/collector/dcgm/godcgm"
	"github.com/headroom-dev/headroom/collector/energy"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/collector/nvml"
	"github.com/headroom-dev/headroom/collector/nvml/gonvml"
	"github.com/headroom-dev/headroom/collector/pods"
	"github.com/headroom-dev/headroom/collector/ztunnel"
)

// Table returns the collector table with every collector's default
// options, the driver's NVML library and go-dcgm. Each call returns new
// options and libraries.
func Table() collector.Table {
	return slices.Concat(collector.Table{
		nvml.Entry(gonvml.New()),
		dcgm.Entry(godcgm.New(), dcgm.DefaultOptions()),
		pods.Entry(pods.DefaultOptions()),
		modelserver.Entry(modelserver.DefaultOptions()),
		energy.Entry(),
	},
		ztunnel.Entries(ztunnel.DefaultOptions()),
	)
}
