package bpf

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The stand-in for ztunnel: the test binary re-executed with helperEnv
// set, born in a test cgroup and a fresh network namespace. It reads
// commands on stdin and answers one line each on stdout:
//
//	listen PORT REPLY      serve 127.0.0.1:PORT; each connection is read to EOF, answered with REPLY bytes and closed
//	dial PORT MARK SEND    connect with SO_MARK MARK, send SEND bytes, half-close, read to EOF, close; answers "ok RECEIVED"
//	echo PORT              serve 127.0.0.1:PORT, echoing every read back
//	burn MS                spin one locked thread for MS ms of its own CPU time; answers "ok TID CPU_NS"
const helperEnv = "HEADROOM_BPF_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

func helperMain() int {
	if err := loopbackUp(); err != nil {
		fmt.Println("err", err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	sc := bufio.NewScanner(os.Stdin)
	fmt.Fprintln(out, "ready")
	out.Flush()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		n := make([]int, len(f))
		for i := 1; i < len(f); i++ {
			v, _ := strconv.ParseInt(f[i], 0, 64)
			n[i] = int(v)
		}
		var reply string
		switch f[0] {
		case "listen":
			reply = helperListen(n[1], n[2])
		case "echo":
			reply = helperEcho(n[1])
		case "dial":
			reply = helperDial(n[1], n[2], n[3])
		case "burn":
			reply = helperBurn(n[1])
		default:
			reply = "err unknown command"
		}
		fmt.Fprintln(out, reply)
		out.Flush()
	}
	return 0
}

// loopbackUp brings lo up: a new network namespace starts with it down.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func helperListen(port, reply int) string {
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "err " + err.Error()
	}
	go serve(ln, reply)
	return "ok"
}

// helperEcho serves 127.0.0.1:PORT, writing back whatever it reads.
func helperEcho(port int) string {
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "err " + err.Error()
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					if _, err := c.Write(buf[:n]); err != nil {
						return
					}
				}
			}()
		}
	}()
	return "ok"
}

// serve reads each connection to EOF, answers reply bytes and closes.
func serve(ln net.Listener, reply int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			if _, err := drain(c); err != nil {
				return
			}
			_, _ = c.Write(make([]byte, reply))
		}()
	}
}

// drain reads to EOF with plain reads (no splice), counting bytes.
func drain(r io.Reader) (int, error) {
	buf := make([]byte, 32<<10)
	total := 0
	for {
		n, err := r.Read(buf)
		total += n
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// exchange sends send bytes on c, half-closes, reads to EOF and closes.
func exchange(c net.Conn, send int) (int, error) {
	defer c.Close()
	if _, err := c.Write(make([]byte, send)); err != nil {
		return 0, err
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return 0, err
	}
	return drain(c)
}

func helperDial(port, mark, send int) string {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if mark != 0 {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return "err " + err.Error()
	}
	got, err := exchange(c, send)
	if err != nil {
		return "err " + err.Error()
	}
	return fmt.Sprintf("ok %d", got)
}

func helperBurn(ms int) string {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPU()
	x := uint64(1)
	for threadCPU()-start < int64(ms)*1e6 {
		for i := 0; i < 10000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	_ = x
	return fmt.Sprintf("ok %d %d", unix.Gettid(), threadCPU())
}

func threadCPU() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return ts.Nano()
}
