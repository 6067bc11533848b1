package ztunnel

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/bpf"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/cri"
	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

const (
	ztID   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	vllmID = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ztUID  = "11111111-2222-3333-4444-555555555555"
	llmUID = "66666666-7777-8888-9999-000000000000"
)

func cgPath(uid, id string) string {
	u := strings.ReplaceAll(uid, "-", "_")
	return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + u + ".slice/cri-containerd-" + id + ".scope"
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fixture lays out a /proc with ztunnel (pid 10, netns 111, plus thread
// 11) and a model server (pid 20, netns 222), and ztunnel's cgroup.
func fixture(t *testing.T) (Options, collector.Host, Runtime) {
	dir := t.TempDir()
	proc, cg := filepath.Join(dir, "proc"), filepath.Join(dir, "cgroup")
	for _, p := range []struct{ pid, comm, cgroup, netns string }{
		{"10", "ztunnel", cgPath(ztUID, ztID), "111"},
		{"20", "vllm", cgPath(llmUID, vllmID), "222"},
	} {
		write(t, filepath.Join(proc, p.pid, "comm"), p.comm+"\n")
		write(t, filepath.Join(proc, p.pid, "cgroup"), "0::"+p.cgroup+"\n")
		if err := os.MkdirAll(filepath.Join(proc, p.pid, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("net:["+p.netns+"]", filepath.Join(proc, p.pid, "ns", "net")); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(proc, "11", "status"), "Name:\tztunnel-worker\nTgid:\t10\nPid:\t11\n")
	ztcg := filepath.Join(cg, cgPath(ztUID, ztID))
	write(t, filepath.Join(ztcg, "memory.current"), "1000\n")
	write(t, filepath.Join(ztcg, "memory.stat"), "anon 600\nfile 400\ninactive_file 100\n")
	write(t, filepath.Join(ztcg, "cpu.stat"), "usage_usec 2500000\n")
	view := cri.NewView(time.Now(), []cri.Pod{
		{UID: ztUID, Namespace: "istio-system", Name: "ztunnel-abc", Meta: cri.Meta{App: "ztunnel"}, Containers: []cri.Container{{ID: ztID, Name: "istio-proxy"}}},
		{UID: llmUID, Namespace: "llm", Name: "vllm-0", Containers: []cri.Container{{ID: vllmID, Name: "vllm"}}},
	})
	return DefaultOptions(), collector.Host{ProcRoot: proc, CgroupRoot: cg}, func() *cri.View { return view }
}

func TestFinder(t *testing.T) {
	t.Parallel()
	o, host, rt := fixture(t)
	f, err := NewFinder(o, host, rt)
	if err != nil {
		t.Fatal(err)
	}
	found, err := f.Find()
	if err != nil {
		t.Fatal(err)
	}
	if len(found.PIDs) != 1 || found.PIDs[0] != 10 || len(found.Cgroups) != 1 || found.Cgroups[0] != cgPath(ztUID, ztID) ||
		!found.OwnNetns[111] || found.Pod != "ztunnel-abc" || found.Namespace != "istio-system" {
		t.Fatalf("found %+v", found)
	}
	pods := f.Pods([]uint32{222, 111, 999})
	if pods[222] != (PodRef{Namespace: "llm", Name: "vllm-0", UID: llmUID}) || pods[999] != (PodRef{}) {
		t.Fatalf("pods %+v", pods)
	}
	if pods[111].Name != "ztunnel-abc" {
		t.Errorf("ztunnel's own namespace: %+v", pods[111])
	}
}

func TestFinderNoZtunnel(t *testing.T) {
	t.Parallel()
	o, host, _ := fixture(t)
	o.ProcessName = "not-here"
	f, err := NewFinder(o, host, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(f, testutil.Logger()).Collect(context.Background())
	if err != nil {
		t.Fatalf("absent ztunnel must not fail the source: %v", err)
	}
	var s snapshot.Snapshot
	r.Own(&s)
	if s.Mesh.Ztunnel.Present {
		t.Errorf("present without ztunnel: %+v", s.Mesh.Ztunnel)
	}
}

// fakeCounters stands in for the loaded programs.
type fakeCounters struct {
	cgroups []uint64
	flows   map[bpf.FlowKey]bpf.FlowTotals
	threads map[uint32]time.Duration
	forgot  []uint32
}

func (c *fakeCounters) SetCgroups(ids []uint64) error                  { c.cgroups = ids; return nil }
func (c *fakeCounters) Flows() (map[bpf.FlowKey]bpf.FlowTotals, error) { return c.flows, nil }
func (c *fakeCounters) Threads() (map[uint32]time.Duration, error)     { return c.threads, nil }
func (c *fakeCounters) ForgetThreads(tids []uint32) error              { c.forgot = tids; return nil }
func (c *fakeCounters) Close() error                                   { return nil }
func (c *fakeCounters) Programs() []bpf.ProgramStatus {
	return []bpf.ProgramStatus{{Name: "send_length", RunCount: 10, RunTime: time.Microsecond}, {Name: "sched_switch", Err: bpf.ErrPermission}}
}

func TestSourcesTogether(t *testing.T) {
	t.Parallel()
	o, host, rt := fixture(t)
	f, err := NewFinder(o, host, rt)
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeCounters{
		flows: map[bpf.FlowKey]bpf.FlowTotals{
			{Netns: 222, Leg: bpf.LegApp}:   {BytesSent: 10, BytesReceived: 20, ConnectionsOpened: 2, ConnectionsClosed: 1},
			{Netns: 222, Leg: bpf.LegOther}: {BytesSent: 1, ConnectionsOpened: 1},
			{Netns: 222, Leg: bpf.LegHBONE}: {BytesSent: 30, ConnectionsOpened: 1},
			{Netns: 111, Leg: bpf.LegOther}: {BytesReceived: 5},
		},
		threads: map[uint32]time.Duration{11: 1500 * time.Millisecond, 12: time.Second},
	}
	logger := testutil.Logger()
	var s snapshot.Snapshot
	for _, src := range []collector.Source{New(f, logger), NewEBPFWith(f, c, logger)} {
		r, err := src.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		r.Own(&s)
	}
	z := s.Mesh.Ztunnel
	if !z.Present || z.Memory == nil || z.Memory.WorkingSet != 900 || z.Memory.Anon != 600 || z.Memory.CPUSeconds != 2.5 {
		t.Fatalf("ztunnel %+v memory %+v", z, z.Memory)
	}
	want := []snapshot.ZtunnelFlow{
		{Namespace: "", Pod: "", Netns: 111, Leg: snapshot.LegControl, BytesReceived: 5},
		{Namespace: "llm", Pod: "vllm-0", UID: llmUID, Netns: 222, Leg: snapshot.LegApp, BytesSent: 11, BytesReceived: 20, Opened: 3, Closed: 1},
		{Namespace: "llm", Pod: "vllm-0", UID: llmUID, Netns: 222, Leg: snapshot.LegHBONE, BytesSent: 30, Opened: 1},
	}
	// ztunnel's own namespace is named after its pod by the scan; the
	// control leg keeps that name.
	want[0].Namespace, want[0].Pod, want[0].UID = "istio-system", "ztunnel-abc", ztUID
	got := z.Traffic.Flows
	if len(got) != len(want) {
		t.Fatalf("flows %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("flow %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(z.Traffic.Threads) != 1 || z.Traffic.Threads[0] != (snapshot.ZtunnelThread{PID: 10, TID: 11, Name: "ztunnel-worker", CPUSeconds: 1.5}) {
		t.Errorf("threads %+v", z.Traffic.Threads)
	}
	if len(c.forgot) != 1 || c.forgot[0] != 12 {
		t.Errorf("exited thread 12 not forgotten: %v", c.forgot)
	}
	if p := z.Traffic.Programs; len(p) != 2 || !p[0].Attached || p[1].Attached || p[1].Err == "" {
		t.Errorf("programs %+v", p)
	}
}

func TestParseNetnsLink(t *testing.T) {
	t.Parallel()
	if n, err := parseNetnsLink("net:[4026531993]"); err != nil || n != 4026531993 {
		t.Errorf("got %d, %v", n, err)
	}
	for _, bad := range []string{"mnt:[1]", "net:[x]", "net:[1"} {
		if _, err := parseNetnsLink(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
