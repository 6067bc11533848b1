package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/headroom-dev/headroom/internal/servingcert"
	"github.com/headroom-dev/headroom/picker/app"
	"github.com/headroom-dev/headroom/picker/extproc"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// child runs a server role: args are the ext_proc and metrics addresses;
// secure serves ext_proc over TLS.
func child(role string, secure bool, args []string) error {
	extAddr, metricsAddr := args[0], args[1]
	switch role {
	case "picker":
		return pickerChild(extAddr, metricsAddr, secure)
	case "passthrough":
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector())
		go func() { _ = http.ListenAndServe(metricsAddr, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})) }()
		ln, err := net.Listen("tcp", extAddr)
		if err != nil {
			return err
		}
		var opts []grpc.ServerOption
		if secure {
			src, err := servingcert.SelfSigned([]string{"passthrough"}, "", nil)
			if err != nil {
				return err
			}
			opts = append(opts, grpc.Creds(credentials.NewTLS(src.ServerConfig())))
		}
		g := grpc.NewServer(opts...)
		extprocv3.RegisterExternalProcessorServer(g, extproc.PassThrough{})
		return g.Serve(ln)
	}
	return fmt.Errorf("unknown role %q", role)
}

// pickerChild runs the whole picker on 8 static endpoints and feeds it one
// node report for them, so decisions score real telemetry.
func pickerChild(extAddr, metricsAddr string, secure bool) error {
	o := app.DefaultOptions()
	o.Name, o.Auth, o.ExtProcTLS.Insecure = "load", app.AuthInsecure, !secure
	o.IngestAddress, o.MetricsAddress, o.ExtProcAddress, o.HealthAddress = "127.0.0.1:0", metricsAddr, extAddr, "127.0.0.1:0"
	r := &telemetryv1.NodeReport{Node: "gpu-1", AgentInstance: "load", Sequence: 1, IntervalNano: int64(time.Minute)}
	for i := range 8 {
		ip := fmt.Sprintf("10.0.0.%d", i+1)
		if o.Pool.Endpoints != "" {
			o.Pool.Endpoints += ","
		}
		o.Pool.Endpoints += ip + ":8000"
		kv := float64(i) / 10
		r.Pods = append(r.Pods, &telemetryv1.Pod{Name: fmt.Sprintf("vllm-%d", i), Ip: ip,
			ModelServer: &telemetryv1.ModelServer{Engine: "vllm", WaitingRequests: float64(i), RunningRequests: 10, KvCacheUsage: &kv}})
	}
	p, err := app.New(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	ctx := context.Background()
	go feed(ctx, p.IngestAddr().String(), r)
	return p.Run(ctx)
}

// feed keeps the node's report fresh: one a second on one stream.
func feed(ctx context.Context, addr string, r *telemetryv1.NodeReport) {
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return
	}
	st, err := telemetryv1.NewTelemetryServiceClient(conn).Stream(ctx, grpc.WaitForReady(true))
	if err != nil {
		return
	}
	for {
		r.Sequence++
		r.SampleTimeUnixNano = uint64(time.Now().UnixNano())
		if st.Send(r) != nil {
			return
		}
		time.Sleep(time.Second)
	}
}
