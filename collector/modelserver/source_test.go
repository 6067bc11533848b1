package modelserver

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

// hostPort splits a test server's URL.
func hostPort(t *testing.T, raw string) (string, int) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	host, p, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

func TestPodTargets(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	pt := newPodTargets(8000, slog.New(slog.NewTextHandler(&logs, nil)))
	pods := []snapshot.Pod{
		{UID: "u1", Namespace: "llm", Name: "plain", IP: "10.0.0.1"},
		{UID: "u2", Namespace: "llm", Name: "annotated", IP: "10.0.0.2", Engine: "sglang", MetricsPort: 30000, MetricsPath: "stats"},
		{UID: "u3", Namespace: "llm", Name: "trt", IP: "fd00::3", Engine: "trtllm"},
		{UID: "u4", Namespace: "llm", Name: "hostnet", Engine: "vllm"},
		{UID: "u5", Namespace: "llm", Name: "odd", IP: "10.0.0.5", Engine: "tgi", MetricsPort: 99999},
		{Name: "standalone-pod", IP: "10.0.0.9"}, // added by the Part; its target comes from the endpoint
	}
	eps := []Endpoint{{Name: "standalone-pod", IP: "10.0.0.9", Port: 8000, Engine: Triton, MetricsURL: "http://10.0.0.9:8002/metrics"}}
	for range 2 {
		got := pt.specs(pods, eps)
		want := []targetSpec{
			{key: "u1", url: "http://10.0.0.1:8000/metrics", engine: VLLM},
			{key: "u2", url: "http://10.0.0.2:30000/stats", engine: SGLang},
			{key: "u3", url: "http://[fd00::3]:8000/prometheus/metrics", engine: TRTLLM},
			{key: "u5", url: "http://10.0.0.5:8000/metrics", engine: VLLM},
			{key: "standalone/standalone-pod", url: "http://10.0.0.9:8002/metrics", engine: Triton},
		}
		if len(got) != len(want) {
			t.Fatalf("specs %+v", got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("spec %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	if n := strings.Count(logs.String(), "unknown engine-type"); n != 1 {
		t.Errorf("unknown engine logged %d times, want once:\n%s", n, logs.String())
	}
}

// waitUpdate waits for the source's next round that changed something.
func waitUpdate(t *testing.T, s *Source) Table {
	t.Helper()
	select {
	case <-s.Updated():
		return s.Latest()
	case <-time.After(30 * time.Second):
		t.Fatal("no update signalled within 30s")
		return nil
	}
}

// TestSourceKubernetesPods runs the source's own loop: the Part points it
// at the snapshot's GPU pods and attaches their readings; a pod that
// leaves takes its target with it.
func TestSourceKubernetesPods(t *testing.T) {
	t.Parallel()
	vllm, sg := newFakeServer(t, fixture(t, "vllm.prom")), newFakeServer(t, fixture(t, "sglang.prom"))
	ipA, portA := hostPort(t, vllm.URL)
	ipB, portB := hostPort(t, sg.URL)
	o := DefaultOptions()
	o.Interval, o.Timeout = 20*time.Millisecond, 5*time.Second
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := New(ctx, o, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	podsNow := func(withB bool) *snapshot.Snapshot {
		ps := []snapshot.Pod{{UID: "ua", Namespace: "llm", Name: "a", IP: ipA, MetricsPort: portA}}
		if withB {
			ps = append(ps, snapshot.Pod{UID: "ub", Namespace: "llm", Name: "b", IP: ipB, MetricsPort: portB, Engine: "sglang"})
		}
		return &snapshot.Snapshot{Attribution: &snapshot.Attribution{Pods: ps}}
	}
	apply := func(snap *snapshot.Snapshot) {
		enrich(t, s, snap)
	}
	apply(podsNow(true))
	for tb := waitUpdate(t, s); tb["ua"] == nil || tb["ub"] == nil; tb = waitUpdate(t, s) {
	}
	snap := podsNow(true)
	apply(snap)
	a, b := snap.Attribution.Pods[0].ModelServer, snap.Attribution.Pods[1].ModelServer
	if a == nil || a.Stats.Running != 21 || a.Engine != "vllm" || b == nil || b.Stats.Waiting != 7 || b.Engine != "sglang" {
		t.Fatalf("attached readings: a=%+v b=%+v", a, b)
	}

	// A sample without attribution (the pods collector failed) keeps the
	// targets and their readings: b's server hangs from now on, and its
	// last reading must survive.
	sg.mode.Store(modeHang)
	enrich(t, s, &snapshot.Snapshot{})
	for tb := waitUpdate(t, s); tb["ub"] != nil && !tb["ub"].Stale(); tb = waitUpdate(t, s) {
	}
	snap = podsNow(true)
	apply(snap)
	if b := snap.Attribution.Pods[1].ModelServer; b == nil || b.Stats.Waiting != 7 {
		t.Fatalf("after a sample without attribution, b's reading is %+v, want its last one (waiting 7)", b)
	}

	apply(podsNow(false))
	for tb := waitUpdate(t, s); tb["ub"] != nil; tb = waitUpdate(t, s) {
	}
	if s.Latest()["ua"] == nil {
		t.Error("the remaining pod lost its reading")
	}
}

// TestSourceStandalone: with no pods source at all, the endpoints appear
// as pods with their readings.
func TestSourceStandalone(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, fixture(t, "triton.prom"))
	ip, port := hostPort(t, srv.URL)
	o := DefaultOptions()
	o.Interval, o.Timeout = 20*time.Millisecond, 5*time.Second
	o.Endpoints = "name=tri-0,engine=triton,gpus=0,endpoint=" + net.JoinHostPort(ip, strconv.Itoa(port))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := New(ctx, o, testutil.Logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for waitUpdate(t, s)["standalone/tri-0"] == nil {
	}
	snap := &snapshot.Snapshot{GPUs: []snapshot.GPU{{Index: 0, UUID: "GPU-0"}}}
	enrich(t, s, snap)
	if snap.Attribution == nil || len(snap.Attribution.Pods) != 1 {
		t.Fatalf("attribution %+v", snap.Attribution)
	}
	p := snap.Attribution.Pods[0]
	if p.Name != "tri-0" || p.Namespace != "" || p.Port != port || len(p.GPUs) != 1 || p.GPUs[0] != "GPU-0" {
		t.Errorf("standalone pod %+v", p)
	}
	if p.ModelServer == nil || p.ModelServer.Stats.Running != 13 || p.ModelServer.Engine != "triton" {
		t.Errorf("reading %+v", p.ModelServer)
	}
}

func TestNewRejectsBadEndpoints(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Endpoints = "name=x"
	if _, err := New(context.Background(), o, testutil.Logger()); err == nil {
		t.Error("New accepted a bad endpoint")
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	if k := Key(&snapshot.Pod{UID: "u", Namespace: "ns", Name: "n"}); k != "u" {
		t.Errorf("pod key %q", k)
	}
	if k := Key(&snapshot.Pod{Name: "n"}); k != "standalone/n" {
		t.Errorf("standalone key %q", k)
	}
}

// enrich runs the source's sample on snap: Collect, then its enrich step.
func enrich(t *testing.T, s *Source, snap *snapshot.Snapshot) {
	t.Helper()
	r, err := s.Collect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r.Own != nil {
		t.Fatal("the modelserver source fills no section of its own")
	}
	part, err := r.Enrich(t.Context(), snap)
	if err != nil {
		t.Fatal(err)
	}
	if part != nil {
		part(snap)
	}
}
