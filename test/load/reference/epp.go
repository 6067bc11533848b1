package reference

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// EPPOptions configures one EPP process.
type EPPOptions struct {
	// Binary is the EPP (hack/reference-tools.sh builds it).
	Binary string
	// Kubeconfig points at the control plane holding Pool.
	Kubeconfig string
	Pool       Pool
	// Pods is how many pods the pool holds; Start waits until the EPP
	// tracks them all.
	Pods int
	// RefreshMetrics is how often it scrapes each pod's /metrics (its
	// default: 50 ms).
	RefreshMetrics time.Duration
	// Log receives its output (nil: discarded).
	Log io.Writer
	// ReadyTimeout bounds the wait for it to serve (default 60 s).
	ReadyTimeout time.Duration
}

// EPP is a running reference endpoint picker.
type EPP struct {
	cmd *exec.Cmd
	// ExtProc, Health and Metrics are its ext_proc (plaintext gRPC), gRPC
	// health and Prometheus addresses, on 127.0.0.1.
	ExtProc, Health, Metrics string
	exited                   chan struct{}
	err                      error
}

// StartEPP starts the EPP in plaintext (--secure-serving=false: the
// gateway stand-in speaks plaintext ext_proc to every picker) with its
// default scheduling profile (queue 2, KV cache 2, prefix cache 3,
// max-score picker), tracing, pprof and metrics authentication off, and
// waits until it is ready and tracks every pod. It listens on all
// interfaces (it binds ":port"), on free ports.
func StartEPP(ctx context.Context, o EPPOptions) (*EPP, error) {
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = time.Minute
	}
	if o.RefreshMetrics <= 0 {
		o.RefreshMetrics = 50 * time.Millisecond
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("epp: %w (make reference-tools builds it)", err)
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, fmt.Errorf("epp: %w", err)
	}
	e := &EPP{ExtProc: local(ports[0]), Health: local(ports[1]), Metrics: local(ports[2]), exited: make(chan struct{})}
	e.cmd = exec.Command(o.Binary,
		"--pool-name", o.Pool.Name, "--pool-namespace", o.Pool.Namespace,
		"--grpc-port", fmt.Sprint(ports[0]), "--grpc-health-port", fmt.Sprint(ports[1]), "--metrics-port", fmt.Sprint(ports[2]),
		"--secure-serving=false", "--tracing=false", "--enable-pprof=false", "--metrics-endpoint-auth=false",
		"--refresh-metrics-interval", o.RefreshMetrics.String())
	e.cmd.Env = append(os.Environ(), "KUBECONFIG="+o.Kubeconfig)
	e.cmd.Stdout, e.cmd.Stderr = o.Log, o.Log
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("epp: start: %w", err)
	}
	go func() { e.err = e.cmd.Wait(); close(e.exited) }()
	rctx, cancel := context.WithTimeout(ctx, o.ReadyTimeout)
	defer cancel()
	if err := e.waitReady(rctx, o.Pods); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// waitReady waits until the EPP's readiness check serves and its metrics
// list every pod.
func (e *EPP) waitReady(ctx context.Context, pods int) error {
	conn, err := grpc.NewClient(e.Health, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("epp: health client: %w", err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	for {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "readiness"})
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING && trackedPods(e.Metrics) >= pods {
			return nil
		}
		select {
		case <-e.exited:
			return fmt.Errorf("epp exited before it was ready: %v", e.err)
		case <-ctx.Done():
			return fmt.Errorf("epp not ready (tracks %d of %d pods): %w", trackedPods(e.Metrics), pods, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// trackedPods counts the pods the EPP reports a queue size for.
func trackedPods(metrics string) int {
	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	n := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "inference_pool_per_pod_queue_size{") {
			n++
		}
	}
	return n
}

// CPU is the processor time the EPP has used (user + system).
func (e *EPP) CPU() (time.Duration, error) { return ProcessCPU(e.cmd.Process.Pid) }

// Stop asks the EPP to stop (SIGTERM) and kills it after 5 s.
func (e *EPP) Stop() {
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
}

func local(port int) string { return net.JoinHostPort("127.0.0.1", fmt.Sprint(port)) }

// freePorts finds n free TCP ports on all interfaces (the EPP binds
// ":port"). Another process may take one before the EPP does; it then
// fails to start and says so.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// ProcessCPU reads a process's user + system time from /proc/<pid>/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from the
	// closing parenthesis.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	var utime, stime int64
	if _, err := fmt.Sscan(f[11], &utime); err != nil {
		return 0, err
	}
	if _, err := fmt.Sscan(f[12], &stime); err != nil {
		return 0, err
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}
