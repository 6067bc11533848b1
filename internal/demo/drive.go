//go:build cgo

package demo

import (
	"context"
	"math"
	"time"

	"github.com/headroom-dev/headroom/sim/gpusim"
)

// drive plays a short script on the simulator: a load wave that sweeps
// across the GPUs, a hot GPU that throttles, an Xid, and a GPU that falls off
// the bus near the end, so every part of the view moves.
func drive(ctx context.Context, sim *gpusim.Server, total time.Duration) {
	if total <= 0 {
		total = time.Minute // the script repeats every minute when unbounded
	}
	start := time.Now()
	n := sim.NumGPUs()
	sim.SetAmbient(n-2, 45) // a GPU in a hot spot of the rack
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	xid, lost := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		frac := math.Mod(time.Since(start).Seconds()/total.Seconds(), 1)
		for i := range n {
			phase := 2 * math.Pi * (frac*2 + float64(i)/float64(n))
			sim.SetLoad(i, 0.5+0.45*math.Sin(phase))
		}
		sim.SetLoad(n-2, 1)
		if !xid && frac > 0.4 {
			sim.InjectXid(2, 31) // a GPU memory page fault, as a bad kernel causes
			xid = true
		}
		if !lost && frac > 0.75 {
			sim.LoseGPU(n - 1)
			lost = true
		}
	}
}
