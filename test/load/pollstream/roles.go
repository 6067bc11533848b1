package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"

	"github.com/headroom-dev/headroom/agent/report"
	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/picker/auth"
	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

func child(role string, args []string) error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	switch role {
	case "servers": // args: count body-file
		n, _ := strconv.Atoi(args[0])
		return servers(n, args[1])
	case "poll-full": // args: period addr,addr,…
		period, _ := time.ParseDuration(args[0])
		pollFull(ctx, period, strings.Split(args[1], ","))
	case "poll-filtered":
		period, _ := time.ParseDuration(args[0])
		src, err := modelserver.New(ctx, modelserver.Options{Interval: period, Endpoints: endpoints(strings.Split(args[1], ","))}, logger)
		if err != nil {
			return err
		}
		defer src.Close()
	case "picker": // args: grpc-addr metrics-addr
		return picker(args[0], args[1], logger)
	case "agents": // args: period picker-addr pods-per-node addr,addr,…
		period, _ := time.ParseDuration(args[0])
		per, _ := strconv.Atoi(args[2])
		return agents(ctx, period, args[1], per, strings.Split(args[3], ","), logger)
	default:
		return fmt.Errorf("unknown role")
	}
	select {}
}

// servers serves body on n loopback ports and prints their addresses.
func servers(n int, bodyFile string) error {
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	var served atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(body)
	})
	stats, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		_ = http.Serve(stats, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, served.Load())
		}))
	}()
	fmt.Println(stats.Addr().String())
	// Each server on its own loopback IP and all on one port, as the pods
	// of an InferencePool (the EPP mode needs that; the others do not care).
	first, err := net.Listen("tcp", net.JoinHostPort(podIP(0).String(), "0"))
	if err != nil {
		return err
	}
	port := first.Addr().(*net.TCPAddr).Port
	addrs := make([]string, n)
	for i := range n {
		ln := first
		if i > 0 {
			if ln, err = net.Listen("tcp", net.JoinHostPort(podIP(i).String(), strconv.Itoa(port))); err != nil {
				return err
			}
		}
		addrs[i] = ln.Addr().String()
		go func() { _ = http.Serve(ln, h) }()
	}
	fmt.Println(strings.Join(addrs, ","))
	select {}
}

// podIP is server i's loopback address: 127.0.1.1 for the first, then
// 127.0.1.3 onwards, 250 to a /24.
func podIP(i int) net.IP {
	if i == 0 {
		return net.IPv4(127, 0, 1, 1)
	}
	return net.IPv4(127, 0, byte(1+(i+1)/250), byte(1+(i+1)%250))
}

// pollFull scrapes every target each period and parses the whole body,
// as the GIE endpoint picker does. A target still in flight is skipped.
func pollFull(ctx context.Context, period time.Duration, addrs []string) {
	client := &http.Client{Timeout: period, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	for _, a := range addrs {
		go func() {
			t := time.NewTicker(period)
			defer t.Stop()
			for range t.C {
				resp, err := client.Get("http://" + a + "/metrics")
				if err != nil {
					continue
				}
				p := expfmt.NewTextParser(model.UTF8Validation)
				fams, err := p.TextToMetricFamilies(resp.Body)
				_ = resp.Body.Close()
				if err == nil && fams["vllm:num_requests_waiting"] == nil {
					fmt.Fprintln(os.Stderr, "poll: no vllm:num_requests_waiting")
				}
			}
		}()
	}
	<-ctx.Done()
}

func endpoints(addrs []string) string {
	var b strings.Builder
	for i, a := range addrs {
		fmt.Fprintf(&b, "name=pod-%03d,endpoint=%s,engine=vllm ", i, a)
	}
	return strings.TrimSpace(b.String())
}

func picker(grpcAddr, metricsAddr string, logger *slog.Logger) error {
	srv := ingest.NewServer(ingest.NewStore(3, nil), auth.Insecure{}, "picker", logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Metrics())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile) // go tool pprof http://<metrics>/debug/pprof/profile
	go func() { _ = http.ListenAndServe(metricsAddr, mux) }()
	ln, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	g := grpc.NewServer(ingest.GRPCOptions(0)...)
	telemetryv1.RegisterTelemetryServiceServer(g, srv)
	return g.Serve(ln)
}

// agents runs one node agent's model-server path per group of per pods:
// the model-server source on the period, a report after every round that
// changed something, streamed to the picker.
func agents(ctx context.Context, period time.Duration, pickerAddr string, per int, addrs []string, logger *slog.Logger) error {
	for node := 0; node*per < len(addrs); node++ {
		group := addrs[node*per : min((node+1)*per, len(addrs))]
		src, err := modelserver.New(ctx, modelserver.Options{Interval: period, Endpoints: endpoints(group)}, logger)
		if err != nil {
			return err
		}
		so := stream.DefaultOptions()
		so.Addresses, so.Insecure = pickerAddr, true
		st, err := stream.New(so, logger)
		if err != nil {
			return err
		}
		go st.Run(ctx)
		go publish(ctx, fmt.Sprintf("node-%03d", node), src, st, len(group), period)
	}
	<-ctx.Done()
	return nil
}

func publish(ctx context.Context, node string, src *modelserver.Source, st *stream.Streamer, gpus int, period time.Duration) {
	base := &snapshot.Snapshot{Node: node, Time: time.Now()}
	for g := range gpus {
		base.GPUs = append(base.GPUs, snapshot.GPU{Index: g, UUID: fmt.Sprintf("GPU-%s-%d", node, g), Memory: &snapshot.Memory{Total: 80 << 30}})
	}
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-src.Updated():
		}
		s := *base
		s.Attribution = &snapshot.Attribution{}
		// The source's enrich step adds the endpoints as pods with their
		// newest readings.
		if r, err := src.Collect(ctx); err == nil {
			if part, err := r.Enrich(ctx, &s); err == nil && part != nil {
				part(&s)
			}
		}
		seq++
		st.Publish(report.Build(&s, nil, report.Meta{Instance: node, Sequence: seq, Interval: period}))
	}
}
