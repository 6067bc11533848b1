package main

import (
	"fmt"
	"math"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/headroom-dev/headroom/test/load/loadutil"
)

// sample is the picker child's counters at one instant.
type sample struct {
	at                   time.Time
	cpu, received, bytes float64
	hist                 histogram
}

// histogram is cumulative bucket counts by upper bound.
type histogram struct {
	bounds []float64
	counts []float64
}

func measure(pid int, metricsAddr string) (sample, error) {
	s := sample{at: time.Now()}
	cpu, err := loadutil.CPUSeconds(pid)
	if err != nil {
		return s, err
	}
	s.cpu = cpu
	resp, err := http.Get("http://" + metricsAddr)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return s, fmt.Errorf("parse picker metrics: %w", err)
	}
	s.received = counter(fams["headroom_picker_reports_received_total"])
	s.bytes = counter(fams["headroom_picker_report_received_bytes_total"])
	if f := fams["headroom_picker_report_freshness_seconds"]; f != nil && len(f.GetMetric()) == 1 {
		for _, b := range f.GetMetric()[0].GetHistogram().GetBucket() {
			s.hist.bounds = append(s.hist.bounds, b.GetUpperBound())
			s.hist.counts = append(s.hist.counts, float64(b.GetCumulativeCount()))
		}
	}
	return s, nil
}

func counter(f *dto.MetricFamily) float64 {
	if f == nil || len(f.GetMetric()) == 0 {
		return 0
	}
	return f.GetMetric()[0].GetCounter().GetValue()
}

func (h histogram) minus(o histogram) histogram {
	out := histogram{bounds: h.bounds, counts: make([]float64, len(h.counts))}
	for i := range h.counts {
		out.counts[i] = h.counts[i]
		if i < len(o.counts) {
			out.counts[i] -= o.counts[i]
		}
	}
	return out
}

// quantile interpolates linearly inside the bucket, as PromQL's
// histogram_quantile does; beyond the last bound it answers +Inf.
func (h histogram) quantile(q float64) float64 {
	if len(h.counts) == 0 || h.counts[len(h.counts)-1] == 0 {
		return math.NaN()
	}
	total := h.counts[len(h.counts)-1]
	rank := q * total
	lowerBound, lowerCount := 0.0, 0.0
	for i, c := range h.counts {
		if c >= rank {
			if c == lowerCount {
				return h.bounds[i]
			}
			return lowerBound + (h.bounds[i]-lowerBound)*(rank-lowerCount)/(c-lowerCount)
		}
		lowerBound, lowerCount = h.bounds[i], c
	}
	return math.Inf(1)
}
