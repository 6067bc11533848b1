package bpf

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMeshBench is the benchmark of docs/benchmarks.md ("Mesh overhead:
// eBPF cost"), run only when HEADROOM_BENCH_MESH=1:
//
//	HEADROOM_BENCH_MESH=1 go test -count=1 -run TestMeshBench -v ./bpf
//
// A stand-in for ztunnel in a test cgroup and network namespace echoes
// 1 KiB messages for conns ping-pong connections, first with the
// programs off, then on, in the same run. It reports each program's
// average run time from kernel BPF stats, the CPU per message of the
// whole loop (test process plus stand-in cgroup) off and on, and the
// agent-side cost of reading the maps once a second.
func TestMeshBench(t *testing.T) {
	if os.Getenv("HEADROOM_BENCH_MESH") != "1" {
		t.Skip("benchmark: set HEADROOM_BENCH_MESH=1")
	}
	const (
		conns = 4
		phase = 8 * time.Second
	)
	dir, id := testCgroup(t)
	h := startHelper(t, dir)
	h.do("echo 15001")
	var cs []net.Conn
	h.inNetns(func() {
		for range conns {
			c, err := net.Dial("tcp4", "127.0.0.1:15001")
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, c)
		}
	})
	off := loopLoad(t, cs, dir, phase)
	z := loadForTest(t)
	if err := z.SetCgroups([]uint64{id}); err != nil {
		t.Fatal(err)
	}
	before := z.Programs()
	stop := make(chan struct{})
	var readCPU atomic.Int64
	var reads atomic.Int64
	go func() { // the agent's side: read the maps once a second
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				start := processCPU()
				_, _ = z.Flows()
				_, _ = z.Threads()
				_ = z.Programs()
				readCPU.Add(int64(processCPU() - start))
				reads.Add(1)
			}
		}
	}()
	on := loopLoad(t, cs, dir, phase)
	close(stop)
	after := z.Programs()
	for _, c := range cs {
		c.Close()
	}
	t.Logf("load: %d ping-pong connections of 1 KiB messages, %v per phase", conns, phase)
	t.Logf("programs off: %d messages, %.2f µs CPU per message (test process + stand-in cgroup)", off.msgs, off.cpuPerMsg())
	t.Logf("programs on:  %d messages, %.2f µs CPU per message", on.msgs, on.cpuPerMsg())
	for i, p := range after {
		runs := p.RunCount - before[i].RunCount
		rt := p.RunTime - before[i].RunTime
		avg := 0.0
		if runs > 0 {
			avg = float64(rt.Nanoseconds()) / float64(runs)
		}
		t.Logf("program %-13s runs %10d  run time %12v  average %6.1f ns", p.Name, runs, rt, avg)
	}
	if n := reads.Load(); n > 0 {
		t.Logf("agent map reads: %d, %.1f µs CPU each (%.5f%% of a core at 1/s)", n, float64(readCPU.Load())/float64(n)/1e3, float64(readCPU.Load())/float64(n)/1e9*100)
	}
}

type loadResult struct {
	msgs int64
	cpu  time.Duration
}

func (r loadResult) cpuPerMsg() float64 { return float64(r.cpu.Nanoseconds()) / float64(r.msgs) / 1e3 }

// loopLoad ping-pongs 1 KiB on every connection for d and returns the
// messages and the CPU the loop cost on both sides.
func loopLoad(t *testing.T, cs []net.Conn, dir string, d time.Duration) loadResult {
	var msgs atomic.Int64
	startCPU, startCg := processCPU(), cgroupUsage(t, dir)
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1024)
			for time.Now().Before(deadline) {
				if _, err := c.Write(buf); err != nil {
					t.Error(err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					t.Error(err)
					return
				}
				msgs.Add(1)
			}
		}()
	}
	wg.Wait()
	cpu := processCPU() - startCPU + cgroupUsage(t, dir) - startCg
	return loadResult{msgs: msgs.Load(), cpu: cpu}
}

func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		panic(fmt.Sprint(err))
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
