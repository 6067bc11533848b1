package app

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/headroom-dev/headroom/picker/extproc"
	"github.com/headroom-dev/headroom/picker/ingest"
	"github.com/headroom-dev/headroom/picker/scoring"
	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// TestRoutesByTelemetry runs the whole picker (static endpoints, insecure
// ingest on loopback), feeds it one node report through the real ingest
// stream, and plays Envoy for a chat completion: the request goes to the
// emptier pod, the busier one is the fallback, and readiness follows the
// telemetry.
func TestRoutesByTelemetry(t *testing.T) {
	o := DefaultOptions()
	o.Name, o.Auth = "picker-0", AuthInsecure
	o.IngestAddress, o.MetricsAddress, o.ExtProcAddress, o.HealthAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	o.Pool.Endpoints = "10.0.0.1:8000,10.0.0.2:8000"
	o.ExtProc.FallbackEndpoints = 2
	o.DrainDelay, o.ShutdownGrace = 0, time.Second
	p, err := New(o, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	health := healthpb.NewHealthClient(dialPlain(t, p.HealthAddr().String()))
	if st := healthStatus(t, health, "liveness"); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("liveness: %v", st)
	}
	kvBusy, kvIdle := 0.9, 0.1
	sendReport(t, p, &telemetryv1.NodeReport{Node: "gpu-1", AgentInstance: "a", Sequence: 1,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Minute),
		Pods: []*telemetryv1.Pod{
			{Name: "busy", Ip: "10.0.0.1", ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 40, RunningRequests: 60, KvCacheUsage: &kvBusy}},
			{Name: "idle", Ip: "10.0.0.2", ModelServer: &telemetryv1.ModelServer{Engine: "vllm", RunningRequests: 2, KvCacheUsage: &kvIdle}},
		}})
	deadline := time.Now().Add(10 * time.Second)
	joined := func() bool {
		for _, e := range p.route.refresher.Current().Endpoints {
			if e.Stale {
				return false
			}
		}
		return true
	}
	for healthStatus(t, health, "envoy.service.ext_proc.v3.ExternalProcessor") != healthpb.HealthCheckResponse_SERVING || !joined() {
		if time.Now().After(deadline) {
			t.Fatal("never ready with the report joined into the view")
		}
		time.Sleep(20 * time.Millisecond)
	}
	dest := routeChat(t, p.ExtProcAddr().String(), `{"model":"llama","messages":[{"role":"user","content":"hi"}]}`)
	if dest != "10.0.0.2:8000,10.0.0.1:8000" {
		t.Fatalf("destination %q, want the idle pod first and the busy one as fallback", dest)
	}
}

func dialPlain(t *testing.T, addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// dialGateway connects to the ext_proc port as a GIE gateway does: TLS,
// the picker's self-signed certificate not verified.
func dialGateway(t *testing.T, addr string) *grpc.ClientConn {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(gatewayTLS(nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func healthStatus(t *testing.T, c healthpb.HealthClient, service string) healthpb.HealthCheckResponse_ServingStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := c.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health %s: %v", service, err)
	}
	return r.GetStatus()
}

func sendReport(t *testing.T, p *Picker, r *telemetryv1.NodeReport) {
	c := telemetryv1.NewTelemetryServiceClient(dialPlain(t, p.IngestAddr().String()))
	st, err := c.Stream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(r); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Recv(); err != nil {
		t.Fatalf("report refused: %v", err)
	}
}

// routeChat plays Envoy for one POST with a JSON body and returns the
// destination header the picker set.
func routeChat(t *testing.T, addr, body string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := extprocv3.NewExternalProcessorClient(dialGateway(t, addr)).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hdrs := []*corev3.HeaderValue{{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
		{Key: "content-type", RawValue: []byte("application/json")}, {Key: "content-length", RawValue: []byte("61")}}
	msgs := []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hdrs}}}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}},
	}
	for _, m := range msgs {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range resp.GetRequestHeaders().GetResponse().GetHeaderMutation().GetSetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), "x-gateway-destination-endpoint") {
			return string(h.GetHeader().GetRawValue()) + h.GetHeader().GetValue()
		}
	}
	t.Fatalf("no destination header in %v", resp)
	return ""
}

// A request the gateway sent to a fallback releases the in-flight count of
// the endpoint that was picked, not of the one that served.
func TestDoneReleasesThePickedEndpoint(t *testing.T) {
	nodes := ingest.NewStore(3, nil)
	refresher := store.NewRefresher(func() []store.Target {
		return []store.Target{store.NewTarget("", "a", "10.0.0.1", 8000), store.NewTarget("", "b", "10.0.0.2", 8000)}
	}, nodes, time.Second)
	picker, err := scoring.New(scoring.DefaultConfig(), rand.NewPCG(1, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &router{views: refresher, picker: picker, n: 2, metrics: newRouteMetrics(), now: time.Now}
	d, err := r.Decide(t.Context(), &extproc.Request{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	picked, fallback := d.Endpoints[0], d.Endpoints[1]
	if n := picker.Tracker().InFlight(picked); n != 1 {
		t.Fatalf("in flight after the pick: %d", n)
	}
	r.Done(picked, extproc.Outcome{Status: 200, Served: fallback, FirstByte: time.Millisecond, Total: 2 * time.Millisecond})
	if a, b := picker.Tracker().InFlight(picked), picker.Tracker().InFlight(fallback); a != 0 || b != 0 {
		t.Fatalf("in flight after Done: picked %d, fallback %d; want 0 and 0", a, b)
	}
}
