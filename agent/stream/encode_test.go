package stream

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/headroom-dev/headroom/internal/testutil"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// countingCodec is the proto codec, counting the reports it marshals.
type countingCodec struct {
	encoding.CodecV2
	reports atomic.Int32
}

func (c *countingCodec) Marshal(v any) (mem.BufferSlice, error) {
	if _, ok := v.(*telemetryv1.NodeReport); ok {
		c.reports.Add(1)
	}
	return c.CodecV2.Marshal(v)
}

// TestReportEncodedOncePerPublish: a report sent to three replicas is
// marshalled once, not once per stream.
func TestReportEncodedOncePerPublish(t *testing.T) {
	p := newPKI(t)
	a := startPicker(t, p, "127.0.0.1", 0)
	b := startPicker(t, p, "127.0.0.2", a.port(t))
	c := startPicker(t, p, "127.0.0.3", a.port(t))
	r := &resolver{}
	r.set("127.0.0.1", "127.0.0.2", "127.0.0.3")
	codec := &countingCodec{CodecV2: encoding.GetCodecV2(proto.Name)}
	s, err := New(p.agentOptions(t, "node-a", a.port(t)), testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	dial := s.dialOpts
	s.dialOpts = func(host string) []grpc.DialOption {
		return append(dial(host), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codec)))
	}
	s.SetResolver(r.lookup)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	for seq := uint64(1); seq <= 3; seq++ {
		s.Publish(nodeReport("node-a", seq))
		eventually(t, fmt.Sprintf("every replica holds report %d", seq), func() bool {
			return a.sequence("node-a") == seq && b.sequence("node-a") == seq && c.sequence("node-a") == seq
		})
	}
	if n := codec.reports.Load(); n != 3 {
		t.Errorf("3 reports to 3 replicas were marshalled %d times, want 3 (once each)", n)
	}
}
