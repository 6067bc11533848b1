package app

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// TestHeldOutMetrics: one endpoint per memory-health reason and one lost
// GPU are counted under their reasons; the healthy one is not.
func TestHeldOutMetrics(t *testing.T) {
	t.Parallel()
	p, err := scoring.New(scoring.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ep := func(h *telemetryv1.GPUHealth) *store.Endpoint {
		return &store.Endpoint{Pod: &telemetryv1.Pod{Name: "p"}, ReportSample: now, GPUs: []*telemetryv1.GPU{{Uuid: "GPU-1", Health: h}}}
	}
	v := &store.View{Endpoints: []*store.Endpoint{
		ep(&telemetryv1.GPUHealth{}),
		ep(&telemetryv1.GPUHealth{RowRemapPending: true}),
		ep(&telemetryv1.GPUHealth{RowRemapFailed: true}),
		ep(&telemetryv1.GPUHealth{EccUncorrected: 3}),
		ep(&telemetryv1.GPUHealth{Lost: true}),
	}}
	want := `
# HELP headroom_picker_endpoints_held_out Endpoints the health filter holds out of routing, by reason: model_server_stale, gpu_lost, row_remap_failed, row_remap_pending, ecc_uncorrected (a GPU's memory unsafe until a reset) or xid (a new critical Xid, for the hold time).
# TYPE headroom_picker_endpoints_held_out gauge
headroom_picker_endpoints_held_out{reason="ecc_uncorrected"} 1
headroom_picker_endpoints_held_out{reason="gpu_lost"} 1
headroom_picker_endpoints_held_out{reason="model_server_stale"} 0
headroom_picker_endpoints_held_out{reason="row_remap_failed"} 1
headroom_picker_endpoints_held_out{reason="row_remap_pending"} 1
headroom_picker_endpoints_held_out{reason="xid"} 0
`
	if err := testutil.CollectAndCompare(newHeldOutMetrics(func() *store.View { return v }, p.HeldOut), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
