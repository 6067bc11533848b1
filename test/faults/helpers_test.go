package faults

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/headroom-dev/headroom/picker/app"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/sim/gateway"
)

// patience bounds every wait: generous for a loaded two-core machine
// under the race detector; a passing run takes far less.
const patience = 60 * time.Second

// eventually polls cond until it holds, failing the test after patience.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, patience, what, cond)
}

// logBuffer collects a component's log lines for the test to look at.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// picker is one whole headroom-picker (app.Picker) on loopback ports,
// with insecure ingest, run until stop or the end of the test.
type picker struct {
	*app.Picker
	logs   *logBuffer
	cancel context.CancelFunc
	exited chan struct{}
	err    error // Run's result, once exited is closed
	once   sync.Once
	// ext, health and ingest are client connections to its servers.
	ext, health, ingest *grpc.ClientConn
}

// startPicker runs a picker; configure sets its endpoints (and anything
// else) on top of the test defaults.
func startPicker(t *testing.T, configure func(*app.Options)) *picker {
	t.Helper()
	o := app.DefaultOptions()
	o.Name, o.Auth = "picker-0", app.AuthInsecure
	o.IngestAddress, o.MetricsAddress = "127.0.0.1:0", "127.0.0.1:0"
	o.ExtProcAddress, o.HealthAddress = "127.0.0.1:0", "127.0.0.1:0"
	o.DrainDelay, o.ShutdownGrace = 0, time.Second
	configure(&o)
	logs := &logBuffer{}
	p, err := app.New(o, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("picker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pk := &picker{Picker: p, logs: logs, cancel: cancel, exited: make(chan struct{})}
	go func() { pk.err = p.Run(ctx); close(pk.exited) }()
	t.Cleanup(func() {
		pk.stop(t)
		if t.Failed() {
			t.Logf("picker log:\n%s", logs.String())
		}
	})
	pk.ext, pk.health, pk.ingest = dialTLS(t, p.ExtProcAddr().String()), dial(t, p.HealthAddr().String()), dial(t, p.IngestAddr().String())
	return pk
}

// stop ends the picker as a SIGTERM would and waits for it (once).
func (p *picker) stop(t *testing.T) {
	p.once.Do(func() {
		p.cancel()
		select {
		case <-p.exited:
			if p.err != nil {
				t.Errorf("picker Run: %v", p.err)
			}
		case <-time.After(patience):
			t.Errorf("picker did not stop within %s", patience)
		}
	})
}

// running fails the test if the picker's Run has returned.
func (p *picker) running(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("the picker stopped by itself: %v", p.err)
	default:
	}
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// dialTLS connects to the ext_proc port as a gateway does: TLS, the
// picker's self-signed certificate not verified.
func dialTLS(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(gateway.InsecurePickerTLS())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// readiness is what a gateway and the kubelet see: the gRPC health of
// readiness and of the ext_proc service, and /readyz; true only when all
// three say ready, false only when all three say not ready.
func (p *picker) readiness(t *testing.T) (ready, consistent bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(p.health)
	serving := 0
	for _, svc := range []string{"readiness", "envoy.service.ext_proc.v3.ExternalProcessor"} {
		r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health %s: %v", svc, err)
		}
		if r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			serving++
		}
	}
	resp, err := http.Get("http://" + p.MetricsAddr().String() + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		serving++
	}
	return serving == 3, serving == 0 || serving == 3
}

// waitReadiness waits until every readiness signal says want.
func (p *picker) waitReadiness(t *testing.T, want bool) {
	t.Helper()
	eventually(t, "picker readiness to become "+map[bool]string{true: "ready", false: "not ready"}[want], func() bool {
		ready, consistent := p.readiness(t)
		return ready == want && consistent
	})
}

// routed is the picker's answer to one request: the destination list or
// the status of an ImmediateResponse.
type routed struct {
	dest   []string
	status int
}

func (r routed) first() string {
	if len(r.dest) == 0 {
		return ""
	}
	return r.dest[0]
}

// route plays Envoy for one chat completion (headers, then the whole body)
// and returns the picker's decision.
func (p *picker) route(t *testing.T) routed {
	t.Helper()
	body := []byte(`{"model":"llama","messages":[{"role":"user","content":"hi"}]}`)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := extprocv3.NewExternalProcessorClient(p.ext).Process(ctx)
	if err != nil {
		t.Fatalf("ext_proc: %v", err)
	}
	hdrs := []*corev3.HeaderValue{{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
		{Key: "content-type", RawValue: []byte("application/json")}}
	for _, m := range []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hdrs}}}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: body, EndOfStream: true}}},
	} {
		if err := st.Send(m); err != nil {
			t.Fatalf("ext_proc send: %v", err)
		}
	}
	resp, err := st.Recv()
	if err != nil {
		t.Fatalf("ext_proc: no answer: %v", err)
	}
	if ir := resp.GetImmediateResponse(); ir != nil {
		return routed{status: int(ir.GetStatus().GetCode())}
	}
	for _, h := range resp.GetRequestHeaders().GetResponse().GetHeaderMutation().GetSetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), "x-gateway-destination-endpoint") {
			v := string(h.GetHeader().GetRawValue()) + h.GetHeader().GetValue()
			return routed{dest: strings.Split(v, ","), status: http.StatusOK}
		}
	}
	t.Fatalf("ext_proc: neither a destination nor an immediate response: %v", resp)
	return routed{}
}

// metric sums the samples of the named series whose labels include want,
// scraped from a /metrics endpoint at addr (0 when there is none).
func metric(t *testing.T, addr, name string, want map[string]string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics of %s: %v", addr, err)
	}
	sum := 0.0
	for _, m := range fams[name].GetMetric() {
		if hasLabels(m, want) {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// send opens an ingest stream to the picker, sends r and waits for the
// acknowledgement. The stream stays open until the test ends.
func (p *picker) send(t *testing.T, r *telemetryv1.NodeReport) {
	t.Helper()
	st, err := telemetryv1.NewTelemetryServiceClient(p.ingest).Stream(t.Context())
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

// modelServerPod is a report's pod with a vLLM reading.
func modelServerPod(name, ip string, waiting float64, kv float64) *telemetryv1.Pod {
	return &telemetryv1.Pod{Namespace: "llm", Name: name, Ip: ip, ModelServer: &telemetryv1.ModelServer{
		Engine: "vllm", SampleTimeUnixNano: uint64(time.Now().UnixNano()), WaitingRequests: waiting, KvCacheUsage: &kv,
	}}
}

// nodeReport is node's report number seq, valid for 3 × interval (the
// picker's default TTL) after it arrives.
func nodeReport(node string, seq uint64, interval time.Duration, pods ...*telemetryv1.Pod) *telemetryv1.NodeReport {
	return &telemetryv1.NodeReport{Node: node, AgentInstance: "faults", Sequence: seq,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(interval), Pods: pods}
}
