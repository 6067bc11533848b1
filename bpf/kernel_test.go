package bpf

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tolerances the kernel test holds the programs to. Bytes and connections
// are counted from syscall return values and state changes: exact. CPU is
// summed from sched_switch timestamps and compared with the kernel's own
// per-thread run time (schedstat) and the cgroup's cpu.stat.
const (
	cpuTolerance = 0.05                 // relative
	cpuSlack     = 2 * time.Millisecond // absolute, for the switch in and out
)

// TestCountsLoopbackTraffic loads and attaches the real programs, runs
// TCP traffic on loopback between a stand-in for ztunnel (in a test cgroup
// and network namespace) and peers outside that cgroup, and checks every
// byte, connection and CPU nanosecond counted.
func TestCountsLoopbackTraffic(t *testing.T) {
	z := loadForTest(t)
	dir, id := testCgroup(t)
	if err := z.SetCgroups([]uint64{id}); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, dir)
	netns := h.netns()

	const (
		appConns, appSend, appReply       = 3, 100_000, 7_000
		hboneConns, hboneSend, hboneReply = 2, 250_000, 11_000
		otherSend                         = 4_321
	)
	// App leg: peers outside the cgroup connect to the stand-in's 15006.
	h.do("listen 15006 %d", appReply)
	var conns []net.Conn
	h.inNetns(func() {
		for range appConns {
			c, err := net.Dial("tcp4", "127.0.0.1:15006")
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	})
	for _, c := range conns {
		if got, err := exchange(c, appSend); err != nil || got != appReply {
			t.Fatalf("app exchange: got %d, %v", got, err)
		}
	}
	// HBONE leg by mark, and a leg with neither port nor mark: the
	// stand-in connects out to a peer in its namespace.
	var ln net.Listener
	h.inNetns(func() {
		var err error
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	})
	defer ln.Close()
	go serve(ln, hboneReply)
	port := ln.Addr().(*net.TCPAddr).Port
	for range hboneConns {
		h.do("dial %d 0x539 %d", port, hboneSend)
	}
	h.do("dial %d 0 %d", port, otherSend)
	// Traffic outside the cgroup must not count.
	outsideTraffic(t)

	want := map[FlowKey]FlowTotals{
		{netns, LegApp}:   {BytesSent: appConns * appReply, BytesReceived: appConns * appSend, ConnectionsOpened: appConns, ConnectionsClosed: appConns},
		{netns, LegHBONE}: {BytesSent: hboneConns * hboneSend, BytesReceived: hboneConns * hboneReply, ConnectionsOpened: hboneConns, ConnectionsClosed: hboneConns},
		{netns, LegOther}: {BytesSent: otherSend, BytesReceived: hboneReply, ConnectionsOpened: 1, ConnectionsClosed: 1},
	}
	var got map[FlowKey]FlowTotals
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if got, err = z.Flows(); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("flows:\n got %v\nwant %v", got, want)
	}
	t.Logf("flows counted exactly: %v", got)

	checkCPU(t, z, h, dir)
}

// outsideTraffic runs a connection in the test's own namespace and cgroup.
func outsideTraffic(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serve(ln, 1000)
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exchange(c, 5000); err != nil {
		t.Fatal(err)
	}
}

// checkCPU burns CPU on one stand-in thread and compares the programs'
// per-thread time with the kernel's and the cgroup's.
func checkCPU(t *testing.T, z *Ztunnel, h *helper, dir string) {
	const burnMS = 200
	f := h.do("burn %d", burnMS)
	tid, _ := strconv.ParseUint(f[0], 10, 32)
	time.Sleep(50 * time.Millisecond) // the thread blocks and is switched out
	threads, err := z.Threads()
	if err != nil {
		t.Fatal(err)
	}
	pid := h.cmd.Process.Pid
	got := threads[uint32(tid)]
	kernel := schedRuntime(t, pid, int(tid))
	if got < burnMS*time.Millisecond || !within(got, kernel) {
		t.Errorf("thread %d: counted %v, kernel schedstat %v, burned ≥ %d ms", tid, got, kernel, burnMS)
	}
	var sum, kernelSum time.Duration
	for tid, d := range threads {
		sum += d
		kernelSum += schedRuntime(t, pid, int(tid))
	}
	usage := cgroupUsage(t, dir)
	if !within(sum, kernelSum) || !within(sum, usage) {
		t.Errorf("all %d threads: counted %v, kernel schedstat %v, cgroup cpu.stat %v", len(threads), sum, kernelSum, usage)
	}
	t.Logf("CPU: burner thread %v (schedstat %v); %d threads %v (schedstat %v, cpu.stat %v)", got, kernel, len(threads), sum, kernelSum, usage)
}

func within(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff <= cpuSlack+time.Duration(cpuTolerance*float64(want))
}

// schedRuntime is a thread's sum_exec_runtime from schedstat.
func schedRuntime(t *testing.T, pid, tid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		t.Fatalf("thread %d: %v", tid, err)
	}
	ns, err := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(ns)
}

func cgroupUsage(t *testing.T, dir string) time.Duration {
	b, err := os.ReadFile(dir + "/cpu.stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			us, _ := strconv.ParseInt(v, 10, 64)
			return time.Duration(us) * time.Microsecond
		}
	}
	t.Fatal("no usage_usec in cpu.stat")
	return 0
}
