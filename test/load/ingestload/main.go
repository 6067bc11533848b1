// Command ingestload measures the picker's telemetry ingest: it starts an
// ingest server in a child process, streams simulated node reports to it
// from many agents at a fixed rate, and prints the child's CPU use, the
// reports it accepted per second and the sample-to-receipt freshness
// percentiles read from its own histogram.
//
//	go run ./test/load/ingestload -nodes 1000 -rate 10 -duration 20s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"

	"github.com/headroom-dev/headroom/picker/auth"
	"github.com/headroom-dev/headroom/picker/ingest"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/test/load/loadutil"
)

const childEnv = "HEADROOM_INGESTLOAD_CHILD"

type options struct {
	nodes, gpus, procs, conns int
	rate                      float64
	pin                       bool
	profile                   string
	duration, warmup          time.Duration
}

func main() {
	if addr := os.Getenv(childEnv); addr != "" {
		if err := serveChild(addr, os.Args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "ingestload child:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	fs := flag.NewFlagSet("ingestload", flag.ExitOnError)
	fs.IntVar(&o.nodes, "nodes", 1000, "simulated nodes (one stream each)")
	fs.IntVar(&o.gpus, "gpus", 8, "GPUs (and model-server pods) per node")
	fs.IntVar(&o.procs, "processes", 2, "processes per GPU")
	fs.IntVar(&o.conns, "conns", 32, "client connections the streams share (the agents' sockets)")
	fs.Float64Var(&o.rate, "rate", 1, "reports per second per node")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured phase")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "unmeasured phase first")
	fs.BoolVar(&o.pin, "pin", true, "on a machine of 2 or more CPUs, pin the picker to the last CPU and the load to the others, so the load does not steal the picker's CPU")
	fs.StringVar(&o.profile, "cpuprofile", "", "write the picker's CPU profile of the measured phase here")
	_ = fs.Parse(os.Args[1:])
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ingestload:", err)
		os.Exit(1)
	}
}

// serveChild is the picker side: ingest on grpcAddr, metrics on metricsAddr.
func serveChild(grpcAddr, metricsAddr string) error {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := ingest.NewServer(ingest.NewStore(3, nil), auth.Insecure{}, "load", logger)
	reg := prometheus.NewRegistry()
	reg.MustRegister(srv.Metrics())
	mux := http.NewServeMux()
	mux.Handle("/", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile) // for profiling the picker side of a run
	go func() { _ = http.ListenAndServe(metricsAddr, mux) }()
	ln, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	g := grpc.NewServer(ingest.GRPCOptions(0)...)
	telemetryv1.RegisterTelemetryServiceServer(g, srv)
	return g.Serve(ln)
}

func run(o options) error {
	gp, err := loadutil.FreePort()
	if err != nil {
		return err
	}
	mp, err := loadutil.FreePort()
	if err != nil {
		return err
	}
	grpcAddr, metricsAddr := "127.0.0.1:"+strconv.Itoa(gp), "127.0.0.1:"+strconv.Itoa(mp)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, metricsAddr)
	child.Env = append(os.Environ(), childEnv+"="+grpcAddr)
	if o.pin {
		child.Env = append(child.Env, "GOMAXPROCS=1") // it is pinned to one CPU
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	if o.pin {
		if err := loadutil.Pin(child.Process.Pid); err != nil {
			return err
		}
	}
	if err := loadutil.WaitReady("http://"+metricsAddr, 30*time.Second); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := drive(ctx, o, grpcAddr); err != nil {
		return err
	}
	time.Sleep(o.warmup)
	before, err := measure(child.Process.Pid, metricsAddr)
	if err != nil {
		return err
	}
	if o.profile != "" {
		go saveProfile("http://"+metricsAddr+"/debug/pprof/profile?seconds="+strconv.Itoa(int(o.duration.Seconds())-1), o.profile)
	}
	time.Sleep(o.duration)
	after, err := measure(child.Process.Pid, metricsAddr)
	if err != nil {
		return err
	}
	printResult(o, before, after)
	return nil
}

func printResult(o options, before, after sample) {
	secs := after.at.Sub(before.at).Seconds()
	cpu := (after.cpu - before.cpu) / secs
	recv := (after.received - before.received) / secs
	want := float64(o.nodes) * o.rate
	fmt.Printf("picker ingest: %d nodes x %d GPUs (%d processes each), %.3g reports/s per node, %s measured\n",
		o.nodes, o.gpus, o.procs, o.rate, o.duration)
	fmt.Printf("  reports accepted: %.0f/s (offered %.0f/s), %.1f KiB/s\n", recv, want, (after.bytes-before.bytes)/secs/1024)
	fmt.Printf("  picker CPU:       %.3f cores (%.1f µs per report)\n", cpu, cpu/recv*1e6)
	d := after.hist.minus(before.hist)
	fmt.Printf("  freshness:        p50 %s, p99 %s (sample time to receipt, from the picker's histogram)\n",
		fmtSeconds(d.quantile(0.5)), fmtSeconds(d.quantile(0.99)))
}

func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(10 * time.Microsecond).String()
}

func saveProfile(url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingestload: profile:", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(path, b, 0o644)
}
