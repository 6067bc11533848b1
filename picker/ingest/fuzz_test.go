package ingest

import (
	"testing"

	"google.golang.org/protobuf/proto"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// FuzzDecodeReport drives the picker's decoding path (what gRPC's codec
// does, then Validate, then the store) with arbitrary bytes: every input
// must end in an error or a stored report, never a panic, and a report
// Validate accepts holds only sound pod sections.
//
//	go test -run '^$' -fuzz FuzzDecodeReport -fuzztime 10m ./picker/ingest/
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
		pods := len(r.GetPods())
		dropped, err := telemetryv1.Validate(&r)
		if err != nil {
			return
		}
		// Quarantine drops whole pod sections and nothing else.
		podDrops := 0
		for _, d := range dropped {
			if d.Section == telemetryv1.SectionPod {
				podDrops++
			}
		}
		if len(r.GetPods())+podDrops != pods {
			t.Fatalf("%d pods in, %d kept + %d dropped", pods, len(r.GetPods()), podDrops)
		}
		// What is kept passes on its own: validating again drops nothing.
		if again, err := telemetryv1.Validate(&r); err != nil || len(again) != 0 {
			t.Fatalf("a validated report does not validate cleanly again: %v, %v", again, err)
		}
		s.Put(&r)
		if v, ok := s.Node(r.GetNode()); !ok || v.Report == nil {
			t.Fatalf("valid report for %q not stored", r.GetNode())
		}
	})
}
