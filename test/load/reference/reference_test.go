package reference

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestCommonPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		endpoints []string
		want      int
		err       string
	}{
		{"one port", []string{"127.0.1.10:8000", "127.0.1.11:8000"}, 8000, ""},
		{"two ports", []string{"127.0.1.10:8000", "127.0.1.11:8001"}, 0, "share their target port"},
		{"no port", []string{"127.0.1.10"}, 0, "not ip:port"},
		{"host name", []string{"localhost:8000"}, 0, "not ip:port"},
		{"port zero", []string{"127.0.1.10:0"}, 0, "no valid port"},
		{"none", nil, 0, "no endpoints"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := commonPort(tc.endpoints)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("commonPort(%v) = %d, %v; want an error saying %q", tc.endpoints, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("commonPort(%v) = %d, %v; want %d", tc.endpoints, got, err, tc.want)
			}
		})
	}
}

// TestRelayForwardsStreams serves a streaming HTTP response behind a relay
// on another loopback IP and reads it through the relay, chunk by chunk.
func TestRelayForwardsStreams(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		for i := range 3 {
			_, _ = io.WriteString(w, string(body)+"-"+string(rune('a'+i))+"\n")
			w.(http.Flusher).Flush()
			time.Sleep(10 * time.Millisecond)
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	r, err := NewRelay("127.0.9.9:0", ln.Addr().String())
	if err != nil {
		t.Fatalf("relay on 127.0.9.9 (Linux routes all of 127/8 to loopback): %v", err)
	}
	defer r.Close()
	if !strings.HasPrefix(r.Addr(), "127.0.9.9:") {
		t.Fatalf("relay listens on %s", r.Addr())
	}
	resp, err := http.Post("http://"+r.Addr()+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if got := strings.Join(lines, ","); got != "x-a,x-b,x-c" {
		t.Fatalf("through the relay: %q", got)
	}
}

// TestRelayCloseCutsConnections checks that Close ends open connections
// instead of waiting for their clients.
func TestRelayCloseCutsConnections(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }() // never answers
		}
	}()
	r, err := NewRelay("127.0.0.1:0", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("hello"))
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- r.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for an open connection")
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client's connection is still open after Close")
	}
}

func TestSimClass(t *testing.T) {
	t.Parallel()
	fast := SimClass{Name: "fast", MaxNumSeqs: 8, PrefillOverhead: 25 * time.Millisecond, PrefillPerToken: 100 * time.Microsecond,
		InterTokenLatency: 25 * time.Millisecond, TimeFactorUnderLoad: 1.25, KVCacheBlocks: 1024, BlockSize: 16}
	if err := fast.Validate(); err != nil {
		t.Fatal(err)
	}
	// 8 slots / ((0.025 + 200×0.0001 + 99×0.025) × 1.25) = 8 / 3.15 s.
	if got := fast.Capacity(200, 100); got < 2.535 || got > 2.545 {
		t.Errorf("capacity %.3f req/s, want 2.54", got)
	}
	slow := fast
	slow.MaxNumSeqs, slow.InterTokenLatency = 4, 2*fast.InterTokenLatency
	if fast.Capacity(200, 100) < 3*slow.Capacity(200, 100) {
		t.Errorf("half the slots at half the speed should have under a third of the capacity: %.2f vs %.2f", slow.Capacity(200, 100), fast.Capacity(200, 100))
	}
	for name, bad := range map[string]func(*SimClass){
		"no slots":          func(c *SimClass) { c.MaxNumSeqs = 0 },
		"zero token time":   func(c *SimClass) { c.InterTokenLatency = 0 },
		"factor below one":  func(c *SimClass) { c.TimeFactorUnderLoad = 0.5 },
		"no KV cache":       func(c *SimClass) { c.KVCacheBlocks = 0 },
		"negative overhead": func(c *SimClass) { c.PrefillOverhead = -time.Millisecond },
	} {
		t.Run(name, func(t *testing.T) {
			c := fast
			bad(&c)
			if c.Validate() == nil || c.Capacity(200, 100) != 0 {
				t.Errorf("%+v validated", c)
			}
		})
	}
}

func TestSimArgs(t *testing.T) {
	t.Parallel()
	o := SimOptions{Model: "m", Class: SimClass{MaxNumSeqs: 4, InterTokenLatency: 65 * time.Millisecond, TimeFactorUnderLoad: 1.1, KVCacheBlocks: 512, BlockSize: 16},
		LoRAs: []string{"a", "b"}, MaxLoRAs: 2}
	args := strings.Join(simArgs(o, 4242), " ")
	for _, want := range []string{"--port 4242", "--model m", "--force-dummy-tokenizer", "--max-num-seqs 4", "--inter-token-latency 65ms",
		"--time-factor-under-load 1.1", "--kv-cache-size 512", "--max-loras 2", `"name":"a"`, `"name":"b"`} {
		if !strings.Contains(args, want) {
			t.Errorf("args %q lack %q", args, want)
		}
	}
}

func TestProcessCPU(t *testing.T) {
	t.Parallel()
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU time did not grow while spinning (%s then %s, %d spins)", before, after, x)
	}
	if _, err := ProcessCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}
