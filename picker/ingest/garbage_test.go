package ingest

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/headroom-dev/headroom/picker/auth"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// rawCodec sends []byte as is, under the proto codec's name, so the server
// decodes whatever bytes the test chooses.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	_, ok := v.(*[]byte)
	if ok {
		*v.(*[]byte) = b
	}
	return nil
}
func (rawCodec) Name() string { return "proto" }

func TestGarbageOnTheWire(t *testing.T) {
	t.Parallel()
	srv, addr := serve(t, auth.Insecure{})
	conn, err := grpc.NewClient("passthrough:///"+addr, dialInsecure()...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, body := range [][]byte{
		{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}, // a length beyond the message
		{0xff, 0xff, 0xff},                   // an invalid tag
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		desc := &telemetryv1.TelemetryService_ServiceDesc.Streams[0]
		st, err := conn.NewStream(ctx, desc, telemetryv1.TelemetryService_Stream_FullMethodName, grpc.ForceCodec(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		_ = st.SendMsg(body)
		var out []byte
		err = st.RecvMsg(&out)
		cancel()
		if code := status.Code(err); code == codes.OK || code == codes.Unknown {
			t.Fatalf("garbage %x: status %v (%v), want a decoding error status", body, code, err)
		}
	}
	if len(srv.Store().Nodes()) != 0 {
		t.Fatal("garbage reached the store")
	}
}
