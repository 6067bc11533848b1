package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// drive opens one stream per node over o.conns connections and sends a
// report per node at o.rate, each node on its own random phase.
func drive(ctx context.Context, o options, addr string) error {
	clients := make([]telemetryv1.TelemetryServiceClient, o.conns)
	for i := range clients {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		go func() { <-ctx.Done(); _ = conn.Close() }()
		clients[i] = telemetryv1.NewTelemetryServiceClient(conn)
	}
	period := time.Duration(float64(time.Second) / o.rate)
	for n := range o.nodes {
		st, err := clients[n%o.conns].Stream(ctx, grpc.WaitForReady(true))
		if err != nil {
			return err
		}
		r := nodeReport(fmt.Sprintf("node-%05d", n), o.gpus, o.procs)
		go func() { _, _ = st.Recv() }()
		go send(ctx, st, r, period)
	}
	return nil
}

func send(ctx context.Context, st grpc.BidiStreamingClient[telemetryv1.NodeReport, telemetryv1.StreamAck], r *telemetryv1.NodeReport, period time.Duration) {
	select { // spread the nodes over the period
	case <-time.After(time.Duration(rand.Int64N(int64(period)))):
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		r.Sequence++
		r.SampleTimeUnixNano = uint64(time.Now().UnixNano())
		if err := st.Send(r); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// nodeReport is a node of gpus GPUs, each with procs processes and one
// vLLM pod.
func nodeReport(node string, gpus, procs int) *telemetryv1.NodeReport {
	r := &telemetryv1.NodeReport{Node: node, AgentInstance: "load", IntervalNano: int64(time.Second), Mesh: &telemetryv1.MeshOverhead{}}
	for g := range gpus {
		uuid := fmt.Sprintf("GPU-%s-%02d-0000-0000-000000000000", node, g)
		sm, util, kv := 0.6, 0.9, 0.4
		gpu := &telemetryv1.GPU{Index: int32(g), Uuid: uuid, Name: "NVIDIA H100 80GB HBM3",
			Health:           &telemetryv1.GPUHealth{},
			MemoryTotalBytes: 80 << 30, MemoryUsedBytes: 72 << 30, MemoryFreeBytes: 8 << 30,
			SmActive: &sm, Utilization: &util}
		podUID := fmt.Sprintf("6f1c2a4e-%04d-4000-8000-%012d", g, len(node))
		for p := range procs {
			gpu.Processes = append(gpu.Processes, &telemetryv1.Process{Pid: uint32(1000 + p), UsedMemoryBytes: 70 << 30, PodUid: podUID, Container: "vllm"})
		}
		r.Gpus = append(r.Gpus, gpu)
		r.Pods = append(r.Pods, &telemetryv1.Pod{Namespace: "llm", Name: fmt.Sprintf("vllm-%s-%d", node, g), Uid: podUID,
			Ip: fmt.Sprintf("10.%d.%d.%d", g, len(node), g+1), GpuUuids: []string{uuid},
			ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: 3, RunningRequests: 40, KvCacheUsage: &kv}})
	}
	return r
}
