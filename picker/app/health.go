package app

import (
	"context"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Health services the gateway and the kubelet probe on the health port.
const (
	healthLiveness  = "liveness"
	healthReadiness = "readiness"
	healthExtProc   = "envoy.service.ext_proc.v3.ExternalProcessor"
)

// newHealth returns the gRPC health server: alive at once, ready (and the
// ext_proc service serving) only while ready() holds.
func newHealth() *health.Server {
	h := health.NewServer()
	h.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(healthLiveness, healthpb.HealthCheckResponse_SERVING)
	h.SetServingStatus(healthReadiness, healthpb.HealthCheckResponse_NOT_SERVING)
	h.SetServingStatus(healthExtProc, healthpb.HealthCheckResponse_NOT_SERVING)
	return h
}

// watchReadiness keeps the readiness services in step with ready() until
// ctx ends, then marks everything not serving (shutdown drains).
func watchReadiness(ctx context.Context, h *health.Server, ready func() bool, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := false
	for {
		now := ready()
		if now != last {
			st := healthpb.HealthCheckResponse_NOT_SERVING
			if now {
				st = healthpb.HealthCheckResponse_SERVING
			}
			h.SetServingStatus(healthReadiness, st)
			h.SetServingStatus(healthExtProc, st)
			last = now
		}
		select {
		case <-ctx.Done():
			h.Shutdown()
			return
		case <-t.C:
		}
	}
}
