package modelserver

import (
	"math"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// MaxSeriesPerFamily bounds the series of one metric family the parser
// reads. A family past it is left out whole (a sum over part of it would
// be wrong) and its further lines are not even handed to the parser; vLLM
// or SGLang serve one series per model and data-parallel rank.
const MaxSeriesPerFamily = 1024

// kvSlack is how far above 1 a KV-cache ratio may be from rounding; such a
// value reads as 1.
const kvSlack = 1.001

// dropReason says why the parser left a value out. A model server is an
// input the agent does not control: a value no server can mean (a queue of
// -1, a KV usage of 1.5, counts that overflow to +Inf) is dropped on its
// own, so the rest of the scrape, the pod and the node's report still
// count, and the drop is counted (headroom_modelserver_values_dropped_total).
type dropReason int

const (
	dropNegative      dropReason = iota // a count or total below 0
	dropNotFinite                       // NaN, ±Inf, or a sum that overflowed
	dropOutOfRange                      // a ratio outside 0–1
	dropTooManySeries                   // a family past MaxSeriesPerFamily
	dropLoRATruncated                   // a LoRA list past the report's limit
	dropLoRAName                        // an empty or over-long LoRA adapter name
	numDropReasons
)

// String is the reason's metric label.
func (r dropReason) String() string {
	switch r {
	case dropNegative:
		return "negative"
	case dropNotFinite:
		return "not_finite"
	case dropOutOfRange:
		return "out_of_range"
	case dropTooManySeries:
		return "too_many_series"
	case dropLoRATruncated:
		return "lora_adapters_truncated"
	case dropLoRAName:
		return "lora_name"
	}
	return "unknown"
}

// dropCounts counts one scrape's dropped values by reason.
type dropCounts [numDropReasons]uint32

func (d *dropCounts) add(r dropReason) { d[r]++ }

func (d *dropCounts) any() bool { return *d != dropCounts{} }

// count checks one sample of a count or total: finite and not negative.
func (d *dropCounts) count(v float64) bool {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		d.add(dropNotFinite)
		return false
	case v < 0:
		d.add(dropNegative)
		return false
	}
	return true
}

// sum adds the sound samples of f that match keep (nil: all); ok is false
// when there are none, or when the sum overflowed.
func sum(ss []sample, keep func(sample) bool, d *dropCounts) (total float64, ok bool) {
	for _, s := range ss {
		if keep != nil && !keep(s) {
			continue
		}
		if v := s.value; d.count(v) {
			total += v
			ok = true
		}
	}
	if math.IsInf(total, 0) {
		d.add(dropNotFinite)
		return 0, false
	}
	return total, ok
}

// sumAll is sum that gives up (ok false) when any matching sample is
// unsound: histogram totals summed over part of their series would not
// pair sums with counts.
func sumAll(ss []sample, d *dropCounts) (total float64, ok bool) {
	before := *d
	total, ok = sum(ss, nil, d)
	return total, ok && *d == before
}

// fullest is the largest sound ratio of f that matches keep. A ratio
// outside 0–1 (beyond rounding) is dropped; one just above 1 reads as 1.
func fullest(ss []sample, keep func(sample) bool, d *dropCounts) (largest float64, ok bool) {
	for _, s := range ss {
		if keep != nil && !keep(s) {
			continue
		}
		v := s.value
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			d.add(dropNotFinite)
			continue
		case v < 0 || v > kvSlack:
			d.add(dropOutOfRange)
			continue
		}
		v = min(v, 1)
		if !ok || v > largest {
			largest, ok = v, true
		}
	}
	return largest, ok
}

// capNames keeps the sound adapter names of a LoRA list, at most the
// report's limit.
func capNames(names []string, d *dropCounts) []string {
	out := names[:0]
	for _, n := range names {
		if len(n) > telemetryv1.MaxLoRANameBytes {
			d.add(dropLoRAName)
			continue
		}
		if len(out) == telemetryv1.MaxLoRAAdapters {
			d.add(dropLoRATruncated)
			break
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
