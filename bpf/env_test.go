package bpf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/headroom-dev/headroom/collector/cgroups"
)

// loadForTest loads the programs in the running kernel. It skips only
// when the kernel lacks a feature, naming it; lack of privilege fails the
// test when running as root (CI) and skips, loudly, otherwise.
func loadForTest(t testing.TB) *Ztunnel {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN for cgroups and netns): CI runs these as root")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("kernel lacks BTF (/sys/kernel/btf/vmlinux): tp_btf programs cannot load")
	}
	z, err := Load(Options{Stats: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		if errors.Is(err, ebpf.ErrNotSupported) {
			t.Skipf("kernel lacks a feature: %v", err)
		}
		t.Fatalf("loading as root: %v", err)
	}
	t.Cleanup(func() { _ = z.Close() })
	for _, p := range z.Programs() {
		if p.Err != nil {
			t.Fatalf("program %s not running: %v", p.Name, p.Err)
		}
	}
	return z
}

// testCgroup makes a cgroup v2 directory, found from mountinfo (the
// development machines mount the v2 hierarchy at an unusual place).
func testCgroup(t testing.TB) (dir string, id uint64) {
	t.Helper()
	root, err := cgroups.DetectRoot("/proc")
	if err != nil {
		t.Skipf("kernel lacks a feature: %v", err)
	}
	dir = filepath.Join(root, fmt.Sprintf("headroom-bpf-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("making test cgroup: %v", err)
	}
	t.Cleanup(func() {
		for range 50 { // the helper's exit is reaped asynchronously
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("test cgroup %s left behind", dir)
	})
	if id, err = CgroupID(dir); err != nil {
		t.Fatal(err)
	}
	return dir, id
}

// helper is the running stand-in for ztunnel.
type helper struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Scanner
}

// startHelper runs the stand-in inside cgroupDir and a new network
// namespace.
func startHelper(t testing.TB, cgroupDir string) *helper {
	t.Helper()
	cg, err := os.Open(cgroupDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true, CgroupFD: int(cg.Fd()),
		Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL,
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the stand-in in a cgroup and network namespace: %v", err)
	}
	h := &helper{t: t, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if got := h.line(); got != "ready" {
		t.Fatalf("stand-in: %q", got)
	}
	return h
}

func (h *helper) line() string {
	if !h.out.Scan() {
		h.t.Fatalf("stand-in exited: %v", h.out.Err())
	}
	return h.out.Text()
}

// do sends one command and returns the fields of an "ok" answer.
func (h *helper) do(format string, args ...any) []string {
	h.t.Helper()
	fmt.Fprintf(h.in, format+"\n", args...)
	got := h.line()
	f := strings.Fields(got)
	if len(f) == 0 || f[0] != "ok" {
		h.t.Fatalf("stand-in: %s: %s", fmt.Sprintf(format, args...), got)
	}
	return f[1:]
}

// netns returns the inode of the stand-in's network namespace.
func (h *helper) netns() uint32 {
	return netnsOf(h.t, fmt.Sprintf("/proc/%d/ns/net", h.cmd.Process.Pid))
}

func netnsOf(t testing.TB, path string) uint32 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

// inNetns runs fn on a thread inside the stand-in's network namespace:
// sockets fn creates live there (owned by this process, outside the test
// cgroup: the app side of ztunnel's connections).
func (h *helper) inNetns(fn func()) {
	h.t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		h.t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", h.cmd.Process.Pid))
	if err != nil {
		h.t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		h.t.Fatalf("setns: %v", err)
	}
	fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with the goroutine.
		h.t.Fatalf("setns back: %v", err)
	}
	runtime.UnlockOSThread()
}
