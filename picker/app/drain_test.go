package app

import (
	"context"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Requests keep being routed while the picker drains (it reports
// NOT_SERVING, the gateways move away, in-flight streams finish): the view
// they are routed by must keep following the node reports until the drain
// ends, not freeze at the moment SIGTERM came.
func TestViewRefreshesDuringDrain(t *testing.T) {
	o := DefaultOptions()
	o.Name, o.Auth = "picker-0", AuthInsecure
	o.IngestAddress, o.MetricsAddress, o.ExtProcAddress, o.HealthAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	o.Pool.Endpoints = "10.0.0.1:8000"
	o.DrainDelay, o.ShutdownGrace = 5*time.Second, time.Second
	p, err := New(o, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waiting := func(n float64) *telemetryv1.NodeReport {
		return &telemetryv1.NodeReport{Node: "gpu-1", AgentInstance: "a", Sequence: uint64(n),
			SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Minute),
			Pods: []*telemetryv1.Pod{{Name: "vllm-0", Ip: "10.0.0.1", ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: n}}}}
	}
	viewShows := func(n float64) bool {
		eps := p.route.refresher.Current().Endpoints
		return len(eps) == 1 && eps[0].ModelServer().GetWaitingRequests() == n
	}
	sendReport(t, p, waiting(1))
	waitUntil(t, 10*time.Second, "the first report in the view", func() bool { return viewShows(1) })

	health := healthpb.NewHealthClient(dialPlain(t, p.HealthAddr().String()))
	cancel() // SIGTERM: the drain starts
	waitUntil(t, 10*time.Second, "readiness NOT_SERVING", func() bool {
		return healthStatus(t, health, "readiness") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	sendReport(t, p, waiting(7))
	waitUntil(t, 4*time.Second, "a report sent during the drain in the view", func() bool { return viewShows(7) })
}

// waitUntil polls cond every 10 ms and fails the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
