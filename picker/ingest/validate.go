package ingest

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/headroom-dev/headroom/picker/auth"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Limits bound what one report may hold; beyond them it is refused with
// INVALID_ARGUMENT rather than stored.
const (
	maxNameLen         = 253
	maxGPUs            = 64
	maxPods            = 1024
	maxProcessesPerGPU = 4096
	maxGPUsPerPod      = 64
	maxAdapters        = 1024
	// maxInterval bounds the interval a report claims, and with it the
	// TTL during which the picker may route by it.
	maxInterval = time.Minute
)

// ErrInvalidReport wraps every validation failure.
var ErrInvalidReport = errors.New("invalid report")

// Validate checks a decoded report: names, bounded list sizes, finite
// ratios within 0–1. A report that fails must not be stored: a NaN load
// or a node without a name would mislead routing.
func Validate(r *telemetryv1.NodeReport) error {
	if !auth.ValidNodeName(r.GetNode()) {
		return fmt.Errorf("%w: node name %q is not a DNS subdomain of 1–%d bytes", ErrInvalidReport, r.GetNode(), maxNameLen)
	}
	if r.GetSampleTimeUnixNano() > math.MaxInt64 {
		// It would wrap to a negative int64, a time long past, and slip
		// through the future-skew check.
		return fmt.Errorf("%w: sample time %d ns is past what a signed 64-bit count holds (year 2262)", ErrInvalidReport, r.GetSampleTimeUnixNano())
	}
	if r.GetIntervalNano() < 0 || r.GetIntervalNano() > int64(maxInterval) {
		return fmt.Errorf("%w: interval must be 0–%s", ErrInvalidReport, maxInterval)
	}
	if len(r.GetGpus()) > maxGPUs || len(r.GetPods()) > maxPods {
		return fmt.Errorf("%w: more than %d GPUs or %d pods", ErrInvalidReport, maxGPUs, maxPods)
	}
	for i, g := range r.GetGpus() {
		if err := validateGPU(g); err != nil {
			return fmt.Errorf("%w: gpu %d: %w", ErrInvalidReport, i, err)
		}
	}
	for i, p := range r.GetPods() {
		if err := validatePod(p); err != nil {
			return fmt.Errorf("%w: pod %d: %w", ErrInvalidReport, i, err)
		}
	}
	return nil
}

func validateGPU(g *telemetryv1.GPU) error {
	if g.GetUuid() == "" || len(g.GetUuid()) > maxNameLen {
		return errors.New("uuid must be 1–253 bytes")
	}
	if len(g.GetProcesses()) > maxProcessesPerGPU {
		return fmt.Errorf("more than %d processes", maxProcessesPerGPU)
	}
	for _, v := range []*float64{g.SmActive, g.SmOccupancy, g.Utilization, g.MemoryUtilization} {
		if err := ratio(v); err != nil {
			return err
		}
	}
	for _, v := range []*float64{g.TemperatureCelsius, g.PowerWatts} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return errors.New("non-finite reading")
		}
	}
	return nil
}

func validatePod(p *telemetryv1.Pod) error {
	if p.GetName() == "" || len(p.GetName()) > maxNameLen || len(p.GetNamespace()) > maxNameLen {
		return errors.New("name must be 1–253 bytes")
	}
	if p.GetPort() > math.MaxUint16 {
		return fmt.Errorf("port %d out of range", p.GetPort())
	}
	if len(p.GetGpuUuids()) > maxGPUsPerPod {
		return fmt.Errorf("more than %d GPUs", maxGPUsPerPod)
	}
	ms := p.GetModelServer()
	if ms == nil {
		return nil
	}
	for _, v := range []float64{ms.GetWaitingRequests(), ms.GetRunningRequests()} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return errors.New("request counts must be finite and non-negative")
		}
	}
	if l := ms.GetLatency(); l != nil {
		for _, v := range []float64{l.GetTtftSecondsSum(), l.GetTtftCount(), l.GetTpotSecondsSum(), l.GetTpotCount()} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return errors.New("latency totals must be finite and non-negative")
			}
		}
	}
	if err := ratio(ms.KvCacheUsage); err != nil {
		return fmt.Errorf("kv cache usage: %w", err)
	}
	if l := ms.GetLora(); l != nil && len(l.GetRunning())+len(l.GetWaiting()) > maxAdapters {
		return fmt.Errorf("more than %d LoRA adapters", maxAdapters)
	}
	return nil
}

// ratio accepts nil or a finite value in [0, 1] (with rounding slack).
func ratio(v *float64) error {
	if v == nil {
		return nil
	}
	if math.IsNaN(*v) || *v < 0 || *v > 1.001 {
		return fmt.Errorf("ratio %v outside 0–1", *v)
	}
	return nil
}
