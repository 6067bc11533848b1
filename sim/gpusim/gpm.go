//go:build cgo

package gpusim

import (
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// gpmSample records the GPM integrals of one GPU at one instant.
type gpmSample struct {
	at                        time.Time
	smActiveSec, occupancySec float64
	filled                    bool
}

func (*gpmSample) Free() nvml.Return                   { return nvml.SUCCESS }
func (*gpmSample) Get(nvml.Device) nvml.Return         { return nvml.ERROR_NOT_SUPPORTED }
func (*gpmSample) MigGet(nvml.Device, int) nvml.Return { return nvml.ERROR_NOT_SUPPORTED }

// fillGPM answers GPM support by profile and fills samples from the model.
func (s *Server) fillGPM(g *gpu) {
	d := g.dev
	d.GpmQueryDeviceSupportFunc = func() (sup nvml.GpmSupport, r nvml.Return) {
		r = s.withGPU(g, func(*gpu) nvml.Return {
			if s.prof.gpm {
				sup.IsSupportedDevice = 1
			}
			return nvml.SUCCESS
		})
		return sup, r
	}
	d.GpmSampleGetFunc = func(sample nvml.GpmSample) nvml.Return {
		return s.withGPU(g, func(g *gpu) nvml.Return {
			if !s.prof.gpm {
				return nvml.ERROR_NOT_SUPPORTED
			}
			gs, ok := sample.(*gpmSample)
			if !ok {
				return nvml.ERROR_INVALID_ARGUMENT
			}
			*gs = gpmSample{at: g.last, smActiveSec: g.smActiveSec, occupancySec: g.occupancySec, filled: true}
			return nvml.SUCCESS
		})
	}
}

// fillMIGGPM answers GPM samples of one MIG slice (by GPU-instance ID)
// from the slice's own integral.
func (s *Server) fillMIGGPM(g *gpu) {
	g.dev.GpmMigSampleGetFunc = func(gi int, sample nvml.GpmSample) nvml.Return {
		return s.withGPU(g, func(g *gpu) nvml.Return {
			if !s.prof.gpm {
				return nvml.ERROR_NOT_SUPPORTED
			}
			gs, ok := sample.(*gpmSample)
			if !ok {
				return nvml.ERROR_INVALID_ARGUMENT
			}
			for _, m := range g.mig {
				if m.gi == gi {
					*gs = gpmSample{at: g.last, smActiveSec: m.smActiveSec, filled: true}
					return nvml.SUCCESS
				}
			}
			return nvml.ERROR_NOT_FOUND
		})
	}
}

// fillServerGPM sets the library-level GPM calls: sample allocation and the
// metrics computed between two samples.
func (s *Server) fillServerGPM() {
	s.GpmSampleAllocFunc = func() (nvml.GpmSample, nvml.Return) {
		return &gpmSample{}, nvml.SUCCESS
	}
	s.GpmMetricsGetFunc = func(req *nvml.GpmMetricsGetType) nvml.Return {
		a, ok1 := req.Sample1.(*gpmSample)
		b, ok2 := req.Sample2.(*gpmSample)
		if !ok1 || !ok2 || !a.filled || !b.filled {
			return nvml.ERROR_INVALID_ARGUMENT
		}
		dt := b.at.Sub(a.at).Seconds()
		for i := range req.Metrics[:req.NumMetrics] {
			m := &req.Metrics[i]
			var v float64
			switch nvml.GpmMetricId(m.MetricId) {
			case nvml.GPM_METRIC_SM_UTIL:
				v = b.smActiveSec - a.smActiveSec
			case nvml.GPM_METRIC_SM_OCCUPANCY:
				v = b.occupancySec - a.occupancySec
			default:
				m.NvmlReturn = uint32(nvml.ERROR_NOT_SUPPORTED)
				continue
			}
			if dt > 0 {
				m.Value = 100 * v / dt
			}
			m.NvmlReturn = uint32(nvml.SUCCESS)
		}
		return nvml.SUCCESS
	}
}
