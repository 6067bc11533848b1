package ingest

import (
	"testing"

	"google.golang.org/protobuf/proto"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// FuzzDecodeReport drives the picker's decoding path (what gRPC's codec
// does, then Validate, then the store) with arbitrary bytes: every input
// must end in an error or a stored report, never a panic.
func FuzzDecodeReport(f *testing.F) {
	for _, r := range []*telemetryv1.NodeReport{report("node-a", 1), report("", 0), {}} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	s := NewStore(3, nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		var r telemetryv1.NodeReport
		if err := proto.Unmarshal(b, &r); err != nil {
			return
		}
		if err := Validate(&r); err != nil {
			return
		}
		s.Put(&r)
		if v, ok := s.Node(r.GetNode()); !ok || v.Report == nil {
			t.Fatalf("valid report for %q not stored", r.GetNode())
		}
	})
}
