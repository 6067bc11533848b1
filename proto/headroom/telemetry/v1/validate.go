package telemetryv1

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// maxInterval bounds the interval a report claims, and with it the TTL
// during which the picker may route by it. The list and name limits are
// the report contract's (limits.go).
const maxInterval = time.Minute

// ErrInvalidReport wraps every error that refuses a whole report.
var ErrInvalidReport = errors.New("invalid report")

// Sections of a report that Validate drops on their own.
const (
	SectionPod        = "pod"
	SectionGPUReading = "gpu_reading"
)

// Dropped is one part of a report that Validate left out, so that the rest
// of the report still counts: one pod section, or one GPU reading.
type Dropped struct {
	// Section is SectionPod or SectionGPUReading.
	Section string
	// Reason is a short fixed word, a metric label.
	Reason string
	// Part names the pod (namespace/name, as the report says it, cut to a
	// sane length) or GPU the part belonged to; Detail says what was
	// wrong. Both are for logs.
	Part, Detail string
}

// Validate checks a decoded report, as the picker does with every report it
// receives (and the agent's tests with every report it builds). What would make the whole report
// meaningless or unbounded — the node name, the interval, the sample
// time, the GPU identities and the list sizes — refuses it with an error
// wrapping ErrInvalidReport. A value that is merely impossible is
// quarantined instead: a pod section that fails (a negative queue, a KV
// usage above 1, a non-finite latency total, too many LoRA adapters, a bad
// IP…) is removed from r.Pods, and a GPU ratio or reading that is not
// finite or out of range is cleared, so the node's other pods, its GPUs
// and their lost and Xid signals still count. It returns what it dropped.
func Validate(r *NodeReport) ([]Dropped, error) {
	if err := validateHeader(r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidReport, err)
	}
	var dropped []Dropped
	for i, g := range r.GetGpus() {
		if err := validateGPU(g); err != nil {
			return nil, fmt.Errorf("%w: gpu %d: %w", ErrInvalidReport, i, err)
		}
		dropped = clearBadReadings(g, dropped)
	}
	if m := r.GetMesh(); m != nil && len(m.GetPods()) > MaxPods {
		return nil, fmt.Errorf("%w: more than %d pods in the mesh section", ErrInvalidReport, MaxPods)
	}
	sample := r.GetSampleTimeUnixNano()
	var kept []*Pod
	for i, p := range r.GetPods() {
		reason, err := validatePod(p, sample)
		if err == nil {
			if kept != nil {
				kept = append(kept, p)
			}
			continue
		}
		if kept == nil {
			kept = append(make([]*Pod, 0, len(r.Pods)-1), r.Pods[:i]...)
		}
		dropped = append(dropped, Dropped{Section: SectionPod, Reason: reason, Part: podLabel(p), Detail: err.Error()})
	}
	if kept != nil {
		r.Pods = kept
	}
	return dropped, nil
}

func validateHeader(r *NodeReport) error {
	switch {
	case !ValidNodeName(r.GetNode()):
		return fmt.Errorf("node name %q is not a DNS subdomain of 1–%d bytes", cut(r.GetNode()), MaxNameBytes)
	case r.GetSampleTimeUnixNano() > math.MaxInt64:
		// It would wrap to a negative int64, a time long past, and slip
		// through the future-skew check.
		return fmt.Errorf("sample time %d ns is past what a signed 64-bit count holds (year 2262)", r.GetSampleTimeUnixNano())
	case r.GetIntervalNano() < 0 || r.GetIntervalNano() > int64(maxInterval):
		return fmt.Errorf("interval must be 0–%s", maxInterval)
	case len(r.GetGpus()) > MaxGPUs || len(r.GetPods()) > MaxPods:
		return fmt.Errorf("more than %d GPUs or %d pods", MaxGPUs, MaxPods)
	}
	return nil
}

// validateGPU checks what identifies a GPU and bounds its lists; its
// readings are clearBadReadings'.
func validateGPU(g *GPU) error {
	switch {
	case g.GetUuid() == "" || len(g.GetUuid()) > MaxNameBytes:
		return fmt.Errorf("uuid must be 1–%d bytes", MaxNameBytes)
	case len(g.GetProcesses()) > MaxProcessesPerGPU:
		return fmt.Errorf("more than %d processes", MaxProcessesPerGPU)
	case len(g.GetHealth().GetXidErrors()) > MaxXidCodesPerGPU:
		return fmt.Errorf("more than %d Xid entries", MaxXidCodesPerGPU)
	case len(g.GetMig()) > MaxMIGPerGPU:
		return fmt.Errorf("more than %d MIG slices", MaxMIGPerGPU)
	}
	for _, m := range g.GetMig() {
		if m.GetUuid() == "" || len(m.GetUuid()) > MaxNameBytes {
			return fmt.Errorf("MIG uuid must be 1–%d bytes", MaxNameBytes)
		}
		if m.GetMemoryUsedBytes() > m.GetMemoryTotalBytes() {
			return fmt.Errorf("MIG slice %s uses more memory than it has", cut(m.GetUuid()))
		}
		if err := ratio(m.SmActive); err != nil {
			return fmt.Errorf("MIG slice %s sm_active: %w", cut(m.GetUuid()), err)
		}
	}
	return nil
}

// clearBadReadings clears the GPU readings that are out of range or not
// finite (they are optional: cleared means unknown) and notes each.
func clearBadReadings(g *GPU, dropped []Dropped) []Dropped {
	ratios := []struct {
		name string
		v    **float64
	}{{"sm_active", &g.SmActive}, {"sm_occupancy", &g.SmOccupancy}, {"utilization", &g.Utilization}, {"memory_utilization", &g.MemoryUtilization}}
	for _, f := range ratios {
		if err := ratio(*f.v); err != nil {
			dropped = append(dropped, Dropped{Section: SectionGPUReading, Reason: "ratio", Part: cut(g.GetUuid()), Detail: f.name + ": " + err.Error()})
			*f.v = nil
		}
	}
	for _, f := range []struct {
		name string
		v    **float64
	}{{"temperature_celsius", &g.TemperatureCelsius}, {"power_watts", &g.PowerWatts}} {
		if v := *f.v; v != nil && !finite(*v) {
			dropped = append(dropped, Dropped{Section: SectionGPUReading, Reason: "not_finite", Part: cut(g.GetUuid()), Detail: f.name})
			*f.v = nil
		}
	}
	return dropped
}

// validatePod checks one pod section; on failure it returns the reason (a
// metric label) and what was wrong.
func validatePod(p *Pod, reportSample uint64) (string, error) {
	if p.GetName() == "" || len(p.GetName()) > MaxNameBytes || len(p.GetNamespace()) > MaxNameBytes || len(p.GetUid()) > MaxNameBytes {
		return "name", fmt.Errorf("name must be 1–%d bytes, namespace and uid at most that", MaxNameBytes)
	}
	if ip := p.GetIp(); ip != "" {
		if a, err := netip.ParseAddr(ip); err != nil || a.Zone() != "" {
			return "ip", fmt.Errorf("ip %q is not an IP address", cut(ip))
		}
	}
	if p.GetPort() > math.MaxUint16 {
		return "port", fmt.Errorf("port %d out of range", p.GetPort())
	}
	if len(p.GetGpuUuids()) > MaxGPUsPerPod || len(p.GetMigUuids()) > MaxGPUsPerPod {
		return "gpus", fmt.Errorf("more than %d GPUs or MIG slices", MaxGPUsPerPod)
	}
	if e := p.EnergyPerOutputTokenJoules; e != nil && (!finite(*e) || *e < 0) {
		return "energy", fmt.Errorf("energy per output token must be finite and non-negative, got %v", *e)
	}
	if ms := p.GetModelServer(); ms != nil {
		return validateModelServer(ms, reportSample)
	}
	return "", nil
}

// ValidateModelServer checks one model-server reading as the ingest checks
// a report's (notSampledAfter bounds its sample time, as a report's own
// sample time does); reason names the part that failed.
func ValidateModelServer(ms *ModelServer, notSampledAfter uint64) (reason string, err error) {
	return validateModelServer(ms, notSampledAfter)
}

func validateModelServer(ms *ModelServer, reportSample uint64) (string, error) {
	if t := ms.GetSampleTimeUnixNano(); t > reportSample {
		// The agent stamps its report with its newest reading's time.
		return "sample_time", fmt.Errorf("model-server sample time %d is after the report's %d", t, reportSample)
	}
	for _, v := range []float64{ms.GetWaitingRequests(), ms.GetRunningRequests()} {
		if !finite(v) || v < 0 {
			return "requests", fmt.Errorf("request counts must be finite and non-negative, got %v", v)
		}
	}
	if l := ms.GetLatency(); l != nil {
		for _, v := range []float64{l.GetTtftSecondsSum(), l.GetTtftCount(), l.GetTpotSecondsSum(), l.GetTpotCount(),
			l.GetQueueSecondsSum(), l.GetQueueCount(), l.GetPrefillSecondsSum(), l.GetPrefillCount(),
			l.GetInferenceSecondsSum(), l.GetInferenceCount(), l.GetPromptTokensSum(), l.GetPromptTokensCount()} {
			if !finite(v) || v < 0 {
				return "latency", fmt.Errorf("latency totals must be finite and non-negative, got %v", v)
			}
		}
	}
	if err := ratio(ms.KvCacheUsage); err != nil {
		return "kv_cache", fmt.Errorf("kv cache usage: %w", err)
	}
	if l := ms.GetLora(); l != nil {
		for _, names := range [][]string{l.GetRunning(), l.GetWaiting()} {
			if len(names) > MaxLoRAAdapters {
				return "lora", fmt.Errorf("more than %d LoRA adapters in one list", MaxLoRAAdapters)
			}
			for _, n := range names {
				if n == "" || len(n) > MaxLoRANameBytes {
					return "lora", fmt.Errorf("LoRA adapter name must be 1–%d bytes", MaxLoRANameBytes)
				}
			}
		}
	}
	return "", nil
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

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// podLabel names a pod for logs.
func podLabel(p *Pod) string { return cut(p.GetNamespace()) + "/" + cut(p.GetName()) }

// cut shortens a string from a report for an error or a log line.
func cut(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
