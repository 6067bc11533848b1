package app

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func TestViewMetrics(t *testing.T) {
	t.Parallel()
	pod := &telemetryv1.Pod{Name: "p"}
	v := &store.View{Endpoints: []*store.Endpoint{
		{Pod: pod}, {Pod: pod}, {Pod: pod, Stale: true}, {Stale: true}, {Stale: true, Refused: true},
		{Pod: pod, Direct: &telemetryv1.ModelServer{}}, {Direct: &telemetryv1.ModelServer{}},
	}}
	want := `
# HELP headroom_picker_endpoints Endpoints of the pool by their telemetry: fresh, direct (no fresh report, but the picker reads the model server itself), stale (the node's report is past its TTL), none (no report names the pod) or refused (reports name its IP, but none can be its pod's: another node's, another pod UID's, or two nodes claiming it).
# TYPE headroom_picker_endpoints gauge
headroom_picker_endpoints{telemetry="direct"} 2
headroom_picker_endpoints{telemetry="fresh"} 2
headroom_picker_endpoints{telemetry="none"} 1
headroom_picker_endpoints{telemetry="refused"} 1
headroom_picker_endpoints{telemetry="stale"} 1
`
	if err := testutil.CollectAndCompare(newViewMetrics(func() *store.View { return v }), strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}
