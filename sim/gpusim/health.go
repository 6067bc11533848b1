//go:build cgo

package gpusim

import "github.com/NVIDIA/go-nvml/pkg/nvml"

// memHealth is the memory-health state of one simulated GPU, as an HBM GPU
// keeps it: ECC counters in two scopes (volatile: since the driver loaded
// or the GPU was reset; aggregate: over the GPU's life) and the row
// remapper's counts and flags.
type memHealth struct {
	volCorrected, volUncorrected uint64
	aggCorrected, aggUncorrected uint64
	// remapCorrectable and remapUncorrectable count rows remapped for
	// correctable and uncorrectable errors.
	remapCorrectable, remapUncorrectable int
	// remapPending: a remap waits for a GPU reset; remapFailed: a remap
	// could not be done (no spare row left in the bank).
	remapPending, remapFailed bool
}

// RemapState is a row-remapping state to force on a GPU with SetRowRemap.
type RemapState struct {
	Correctable, Uncorrectable int
	Pending, Failed            bool
}

// AddECCErrors adds to GPU i's ECC counters, volatile and aggregate alike.
// Each uncorrectable error retires a row, as HBM GPUs do: the row count
// grows and the remap is pending until ResetGPU.
func (s *Server) AddECCErrors(i int, corrected, uncorrected uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.gpus[i].mem
	m.volCorrected += corrected
	m.aggCorrected += corrected
	m.volUncorrected += uncorrected
	m.aggUncorrected += uncorrected
	if uncorrected > 0 {
		m.remapUncorrectable += int(uncorrected)
		m.remapPending = true
	}
}

// SetRowRemap forces GPU i's row-remapping counts and flags.
func (s *Server) SetRowRemap(i int, st RemapState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.gpus[i].mem
	m.remapCorrectable, m.remapUncorrectable = st.Correctable, st.Uncorrectable
	m.remapPending, m.remapFailed = st.Pending, st.Failed
}

// ResetGPU simulates a GPU reset: the volatile ECC counters start again
// from zero and a pending remap is applied (no longer pending). Aggregate
// counters, remapped-row counts and a failed remap stay: a failed remap
// needs the GPU replaced, not reset.
func (s *Server) ResetGPU(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &s.gpus[i].mem
	m.volCorrected, m.volUncorrected = 0, 0
	m.remapPending = false
}

// fillHealth sets ECC, row-remapping and energy readings.
func (s *Server) fillHealth(g *gpu) {
	d := g.dev
	d.GetEccModeFunc = func() (cur, pending nvml.EnableState, r nvml.Return) {
		r = s.withGPU(g, func(*gpu) nvml.Return { return nvml.SUCCESS })
		return nvml.FEATURE_ENABLED, nvml.FEATURE_ENABLED, r
	}
	d.GetTotalEccErrorsFunc = func(t nvml.MemoryErrorType, c nvml.EccCounterType) (n uint64, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			m := &g.mem
			switch {
			case c == nvml.VOLATILE_ECC && t == nvml.MEMORY_ERROR_TYPE_CORRECTED:
				n = m.volCorrected
			case c == nvml.VOLATILE_ECC && t == nvml.MEMORY_ERROR_TYPE_UNCORRECTED:
				n = m.volUncorrected
			case c == nvml.AGGREGATE_ECC && t == nvml.MEMORY_ERROR_TYPE_CORRECTED:
				n = m.aggCorrected
			case c == nvml.AGGREGATE_ECC && t == nvml.MEMORY_ERROR_TYPE_UNCORRECTED:
				n = m.aggUncorrected
			default:
				return nvml.ERROR_INVALID_ARGUMENT
			}
			return nvml.SUCCESS
		})
		return n, r
	}
	d.GetRemappedRowsFunc = func() (corr, unc int, pending, failed bool, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return {
			m := &g.mem
			corr, unc, pending, failed = m.remapCorrectable, m.remapUncorrectable, m.remapPending, m.remapFailed
			return nvml.SUCCESS
		})
		return corr, unc, pending, failed, r
	}
	d.GetTotalEnergyConsumptionFunc = func() (mj uint64, r nvml.Return) {
		r = s.withGPU(g, func(g *gpu) nvml.Return { mj = uint64(g.energyMJ); return nvml.SUCCESS })
		return mj, r
	}
}

// SetMinor sets GPU i's minor number (/dev/nvidia<minor>), which NVIDIA's
// mock makes equal to the index: a real node's minors follow the driver's
// probe order and often differ. Call it before the GPUs are discovered.
func (s *Server) SetMinor(i, minor int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gpus[i].dev.Minor = minor
}
