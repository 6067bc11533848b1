package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/headroom-dev/headroom/sim/gateway"
	"github.com/headroom-dev/headroom/test/load/loadutil"
)

// result is one server's run.
type result struct {
	name          string
	rate          float64
	p50, p90, p99 time.Duration
	allocPerReq   float64
	cpu           float64
	failed        int
}

func run(o options) error {
	body := chatBody(o.body)
	var res []result
	for _, role := range []string{"passthrough", "picker"} {
		r, err := measureRole(o, role, body)
		if err != nil {
			return fmt.Errorf("%s: %w", role, err)
		}
		res = append(res, r)
	}
	fmt.Printf("ext_proc request path, %d-byte body, %.0f req/s offered, %s measured per server, TLS %v\n\n", o.body, o.rate, o.duration, o.tls)
	fmt.Printf("  %-12s %9s %9s %9s %9s %12s %8s %7s\n", "server", "req/s", "p50", "p90", "p99", "alloc/req", "×body", "cores")
	for _, r := range res {
		fmt.Printf("  %-12s %9.0f %9s %9s %9s %10.0f B %8.2f %7.2f  (%d failed)\n", r.name, r.rate, r.p50.Round(time.Microsecond),
			r.p90.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.allocPerReq, r.allocPerReq/float64(o.body), r.cpu, r.failed)
	}
	b, p := res[0], res[1]
	fmt.Printf("\n  added by the picker: p50 %s, p99 %s; allocation %.2f× body per request over the baseline\n",
		(p.p50 - b.p50).Round(time.Microsecond), (p.p99 - b.p99).Round(time.Microsecond), (p.allocPerReq-b.allocPerReq)/float64(o.body))
	return nil
}

func measureRole(o options, role string, body []byte) (result, error) {
	ep, _ := loadutil.FreePort()
	mp, _ := loadutil.FreePort()
	extAddr, metricsAddr := "127.0.0.1:"+strconv.Itoa(ep), "127.0.0.1:"+strconv.Itoa(mp)
	self, err := os.Executable()
	if err != nil {
		return result{}, err
	}
	cmd := exec.Command(self, extAddr, metricsAddr)
	secure := "0"
	if o.tls {
		secure = "1"
	}
	cmd.Env = append(os.Environ(), roleEnv+"="+role, tlsEnv+"="+secure, "GOMAXPROCS=1") // it is pinned to one CPU
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := loadutil.Pin(cmd.Process.Pid); err != nil {
		return result{}, err
	}
	if err := loadutil.WaitReady("http://"+metricsAddr+"/metrics", 30*time.Second); err != nil {
		return result{}, err
	}
	clients := make([]extprocv3.ExternalProcessorClient, o.conns)
	for i := range clients {
		creds := insecure.NewCredentials()
		if o.tls {
			creds = credentials.NewTLS(gateway.InsecurePickerTLS())
		}
		conn, err := grpc.NewClient("passthrough:///"+extAddr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return result{}, err
		}
		defer conn.Close()
		clients[i] = extprocv3.NewExternalProcessorClient(conn)
	}
	l := &load{clients: clients, body: body}
	l.generate(o.rate, o.warmup)
	alloc0, cpu0 := allocBytes(metricsAddr), cpuSeconds(cmd.Process.Pid)
	l.reset()
	t0 := time.Now()
	l.generate(o.rate, o.duration)
	secs := time.Since(t0).Seconds()
	alloc1, cpu1 := allocBytes(metricsAddr), cpuSeconds(cmd.Process.Pid)
	lat, failed := l.results()
	r := result{name: role, rate: float64(len(lat)) / secs, cpu: (cpu1 - cpu0) / secs, failed: failed}
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[min(int(p*float64(len(lat))), len(lat)-1)] }
		r.p50, r.p90, r.p99 = q(0.5), q(0.9), q(0.99)
		r.allocPerReq = (alloc1 - alloc0) / float64(len(lat))
	}
	return r, nil
}

// load plays Envoy at a fixed rate and records each request's latency.
type load struct {
	clients []extprocv3.ExternalProcessorClient
	body    []byte
	mu      sync.Mutex
	lat     []time.Duration
	failed  int
	next    int
}

func (l *load) reset() {
	l.mu.Lock()
	l.lat, l.failed = l.lat[:0], 0
	l.mu.Unlock()
}

func (l *load) results() ([]time.Duration, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lat), l.failed
}

// generate starts rate requests a second for d (open loop: a slow server
// does not slow the offered load) and waits for them.
func (l *load) generate(rate float64, d time.Duration) {
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start, sent := time.Now(), 0
	for now := range tick.C {
		if now.Sub(start) >= d {
			break
		}
		due := int(now.Sub(start).Seconds() * rate)
		for ; sent < due; sent++ {
			c := l.clients[l.next%len(l.clients)]
			l.next++
			wg.Go(func() { l.one(c) })
		}
	}
	wg.Wait()
}

func (l *load) one(c extprocv3.ExternalProcessorClient) {
	lat, err := roundTrip(c, l.body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed++
		return
	}
	l.lat = append(l.lat, lat)
}

// roundTrip sends headers and the body in 16 KiB chunks and returns the
// time from the last chunk sent to the last body chunk received back.
func roundTrip(c extprocv3.ExternalProcessorClient, body []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Process(ctx)
	if err != nil {
		return 0, err
	}
	hdrs := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/v1/chat/completions")},
		{Key: "content-type", RawValue: []byte("application/json")}, {Key: "content-length", RawValue: []byte(strconv.Itoa(len(body)))}}}
	if err := st.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hdrs}}}); err != nil {
		return 0, err
	}
	for off := 0; off < len(body); off += 16 << 10 {
		end := min(off+16<<10, len(body))
		msg := &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: body[off:end], EndOfStream: end == len(body)}}}
		if err := st.Send(msg); err != nil {
			return 0, err
		}
	}
	last := time.Now()
	for {
		r, err := st.Recv()
		if err != nil {
			return 0, err
		}
		if r.GetImmediateResponse() != nil {
			return 0, fmt.Errorf("immediate response %v", r.GetImmediateResponse().GetStatus())
		}
		if r.GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse().GetEndOfStream() {
			return time.Since(last), nil
		}
	}
}

// chatBody is an OpenAI chat completion of about n bytes.
func chatBody(n int) []byte {
	head, tail := `{"model":"llama-3-8b","stream":true,"messages":[{"role":"user","content":"`, `"}]}`
	fill := max(n-len(head)-len(tail), 0)
	return []byte(head + strings.Repeat("a", fill) + tail)
}

func allocBytes(metricsAddr string) float64 {
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0
	}
	if f := fams["go_memstats_alloc_bytes_total"]; f != nil && len(f.GetMetric()) > 0 {
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	return 0
}

func cpuSeconds(pid int) float64 {
	s, _ := loadutil.CPUSeconds(pid)
	return s
}
