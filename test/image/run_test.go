//go:build cgo

package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// sandbox is an image unpacked into a root file system, run the way a
// container runtime runs it: its entrypoint as its user, in its own
// mount and PID namespaces with a fresh /proc, chrooted. The network
// namespace is the host's, so the test reaches its ports on loopback.
type sandbox struct {
	rootfs, user    string
	entrypoint      []string
	unshare, chroot string
}

func newSandbox(t *testing.T, img image) sandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running an image needs root (unshare, chroot, chown); the config and file checks ran")
	}
	var tools [2]string
	for i, tool := range []string{"unshare", "chroot"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s: %v (util-linux and coreutils)", tool, err)
		}
		tools[i] = p
	}
	cfg, err := img.host.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unpack(t, img.host, dir)
	if err := os.MkdirAll(filepath.Join(dir, "proc"), 0o555); err != nil {
		t.Fatal(err)
	}
	return sandbox{rootfs: dir, user: cfg.Config.User, entrypoint: cfg.Config.Entrypoint, unshare: tools[0], chroot: tools[1]}
}

func (s sandbox) command(ctx context.Context, args ...string) *exec.Cmd {
	argv := []string{"--mount", "--pid", "--fork", "--kill-child", "--mount-proc=" + filepath.Join(s.rootfs, "proc"),
		s.chroot, "--userspec=" + s.user, s.rootfs}
	argv = append(append(argv, s.entrypoint...), args...)
	cmd := exec.CommandContext(ctx, s.unshare, argv...)
	cmd.Env = []string{} // a container starts with the image's environment only
	// Stop the whole process group: chroot --userspec changes credentials,
	// which clears the parent-death signal --kill-child sets, so killing
	// unshare alone would leave the entrypoint running.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// start runs the entrypoint in the background until the test ends.
func (s sandbox) start(t *testing.T, args ...string) *bytes.Buffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := s.command(ctx, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("output:\n%s", out.String())
		}
	})
	return &out
}

func checkRuns(t *testing.T, img image) {
	s := newSandbox(t, img)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.command(ctx, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", img.name, err, out)
	}
	labels := mustLabels(t, img)
	want := fmt.Sprintf("%s %s (revision %s, built %s, ", img.name, labels["org.opencontainers.image.version"],
		labels["org.opencontainers.image.revision"], labels["org.opencontainers.image.created"])
	if !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "linux/"+runtime.GOARCH) {
		t.Errorf("--version printed %q, want %q… linux/%s", out, want, runtime.GOARCH)
	}
	buildInfo := fmt.Sprintf(`revision="%s"`, labels["org.opencontainers.image.revision"])
	switch img.name {
	case "headroom-picker":
		checkPickerServes(t, s, buildInfo)
	case "headroom-agent":
		checkAgentServes(t, s, buildInfo)
	}
}

func mustLabels(t *testing.T, img image) map[string]string {
	t.Helper()
	cfg, err := img.host.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Config.Labels
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// checkPickerServes runs the picker with a static endpoint list and no
// Kubernetes: its gRPC health services answer SERVING and /metrics
// carries the build's headroom_build_info.
func checkPickerServes(t *testing.T, s sandbox, buildInfo string) {
	health, metrics := freePort(t), freePort(t)
	s.start(t, "--endpoints=10.0.0.1:8000,10.0.0.2:8000", "--name=image-test",
		"--ingest.auth=insecure", "--ingest.listen-address=127.0.0.1:0", "--metrics.listen-address="+metrics,
		"--extproc.listen-address="+freePort(t), "--health.listen-address="+health)
	conn, err := grpc.NewClient(health, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"liveness", "readiness", "envoy.service.ext_proc.v3.ExternalProcessor"} {
		eventually(t, "health "+svc, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				return err
			}
			if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("status %s", r.GetStatus())
			}
			return nil
		})
	}
	eventually(t, "/metrics", func() error { return bodyHas("http://"+metrics+"/metrics", "headroom_build_info{", buildInfo) })
}

// checkAgentServes runs the agent on the real NVML backend with no NVIDIA
// library in the image (a node without the driver, or before the toolkit
// mounts it): it must stay up, ready, and report the NVML collector failed.
func checkAgentServes(t *testing.T, s sandbox, buildInfo string) {
	addr := freePort(t)
	s.start(t, "--listen-address="+addr, "--node-name=image-test", "--sample-interval=200ms", "--collector.pods=false")
	eventually(t, "/readyz", func() error { return bodyHas("http://"+addr+"/readyz", "ready") })
	eventually(t, "/metrics", func() error {
		return bodyHas("http://"+addr+"/metrics", `headroom_collector_success{collector="nvml"} 0`, "headroom_build_info{", buildInfo)
	})
}

func bodyHas(url string, want ...string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	for _, w := range want {
		if !strings.Contains(string(b), w) {
			return fmt.Errorf("%s lacks %q", url, w)
		}
	}
	return nil
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
