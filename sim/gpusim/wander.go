//go:build cgo

package gpusim

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Populate gives every GPU n processes: one model server holding most of
// the framebuffer (as vLLM preallocates its KV cache) and n-1 small CUDA
// contexts of a few hundred MiB. PIDs are distinct across GPUs.
func (s *Server) Populate(n int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x706f70))
	for i := range s.gpus {
		if n <= 0 {
			s.SetProcesses(i, nil)
			continue
		}
		total := s.MemoryTotal(i)
		base := uint32(10000 + i*1000)
		procs := make([]Process, 0, n)
		var small uint64
		for k := 1; k < n; k++ {
			vram := uint64(256+rng.IntN(256)) << 20
			small += vram
			procs = append(procs, Process{PID: base + uint32(k), VRAM: vram, SMShare: 0.1, MIGInstance: -1})
		}
		big := uint64(float64(total) * 0.85)
		if small+big > total*9/10 {
			big = total*9/10 - min(small, total*9/10)
		}
		procs = append([]Process{{PID: base, VRAM: big, SMShare: 1, MIGInstance: -1}}, procs...)
		s.SetProcesses(i, procs)
	}
}

// Wander moves every GPU's load on a smooth random path until ctx ends:
// each GPU drifts toward its own target, and targets change now and then,
// so the GPUs of one server are never loaded alike.
func (s *Server) Wander(ctx context.Context, tick time.Duration, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x77616e64))
	targets := make([]float64, len(s.gpus))
	for i := range targets {
		targets[i] = rng.Float64()
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := range s.gpus {
			if rng.Float64() < 0.05 {
				targets[i] = rng.Float64()
			}
			cur := s.Load(i)
			next := cur + 0.3*(targets[i]-cur) + 0.05*rng.NormFloat64()
			s.SetLoad(i, math.Round(min(max(next, 0), 1)*100)/100)
		}
	}
}
