//go:build cgo

package gpusim

import (
	"fmt"
	"slices"

	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxb200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh200"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// profile couples one of NVIDIA's mock DGX servers with the physical
// constants the load model needs. The constants are public data-sheet
// figures, rounded: they shape the simulation, they are not measurements.
type profile struct {
	newServer func() *server.Server
	// tdpWatts is the board power limit; idleWatts the draw at no load.
	tdpWatts, idleWatts float64
	// smClockMHz is the boost clock; memClockMHz the memory clock.
	smClockMHz, memClockMHz uint32
	// gpm is true on Hopper and later.
	gpm bool
}

var profiles = map[string]profile{
	"dgxa100": {newServer: dgxa100.New, tdpWatts: 400, idleWatts: 55, smClockMHz: 1410, memClockMHz: 1215, gpm: false},
	"dgxh100": {newServer: dgxh100.New, tdpWatts: 700, idleWatts: 70, smClockMHz: 1980, memClockMHz: 2619, gpm: true},
	"dgxh200": {newServer: dgxh200.New, tdpWatts: 700, idleWatts: 75, smClockMHz: 1980, memClockMHz: 3201, gpm: true},
	"dgxb200": {newServer: dgxb200.New, tdpWatts: 1000, idleWatts: 120, smClockMHz: 1965, memClockMHz: 3996, gpm: true},
}

// Profiles lists the simulated server profiles.
func Profiles() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookupProfile(name string) (profile, error) {
	p, ok := profiles[name]
	if !ok {
		return profile{}, fmt.Errorf("unknown sim profile %q (have %v)", name, Profiles())
	}
	return p, nil
}
