package gateway

import (
	"net"
	"net/http"
	"testing"

	"github.com/headroom-dev/headroom/internal/testutil"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/headroom-dev/headroom/internal/servingcert"
	"github.com/headroom-dev/headroom/picker/extproc"
)

// TestExtProcOverTLS: with InsecurePickerTLS the gateway reaches a picker
// that serves ext_proc over TLS with a self-signed certificate, as the
// picker does by default; plaintext to that picker fails every request.
func TestExtProcOverTLS(t *testing.T) {
	t.Parallel()
	m := startModel(t, nil)
	d := newDecider(m.addr)
	src, err := servingcert.SelfSigned([]string{"picker"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := extproc.New(d, extproc.DefaultOptions(), testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(src.ServerConfig())))
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)

	for _, tc := range []struct {
		name string
		tls  bool
		want int
	}{
		{"TLS, not verified", true, http.StatusOK},
		{"plaintext", false, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{Endpoints: []string{m.addr}, Pickers: []string{lis.Addr().String()}}
			if tc.tls {
				o.PickerTLS = InsecurePickerTLS()
			}
			_, url := startGateway(t, o)
			resp, got := post(t, client(t), url, chatBody(10, false))
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, got, tc.want)
			}
		})
	}
}
