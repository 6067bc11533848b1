package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	vllmID  = strings.Repeat("a", 64)
	proxyID = strings.Repeat("b", 64)
)

const uid2 = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"

// fixture returns a reader over testdata/<layout>: the systemd driver with
// containerd, or the cgroupfs driver with CRI-O on a hybrid host.
func fixture(layout string) *Reader {
	root := filepath.Join("testdata", layout)
	return NewReader(filepath.Join(root, "proc"), filepath.Join(root, "cgroup"))
}

func TestContainerOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		layout  string
		pid     uint32
		pod, id string
		runtime string
		err     error
	}{
		{"systemd", 1001, uid, vllmID, "containerd", nil},
		{"systemd", 1002, uid, proxyID, "containerd", nil},
		{"systemd", 1003, "", "", "", ErrNotContainer}, // a system service
		{"systemd", 4242, "", "", "", ErrProcessGone},  // exited meanwhile
		{"cgroupfs", 2001, uid2, vllmID, "crio", nil},
		{"cgroupfs", 2002, uid2, proxyID, "crio", nil},  // v1 memory line only
		{"cgroupfs", 2003, "", "", "", ErrNotContainer}, // conmon
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.layout, tt.pid), func(t *testing.T) {
			t.Parallel()
			ref, err := fixture(tt.layout).ContainerOf(tt.pid)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("pid %d: err = %v, want %v", tt.pid, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("pid %d: %v", tt.pid, err)
			}
			if ref.PodUID != tt.pod || ref.ContainerID != tt.id || ref.Runtime != tt.runtime {
				t.Errorf("pid %d: %+v", tt.pid, ref)
			}
		})
	}
}

func TestFindContainerAndStats(t *testing.T) {
	t.Parallel()
	tests := []struct {
		layout, pod, id string
		want            Stats
	}{
		{"systemd", uid, vllmID, Stats{Current: 8 << 30, WorkingSet: 7 << 30, Anon: 6 << 30, File: 2 << 30, CPUSeconds: 123.456789}},
		{"systemd", uid, proxyID, Stats{Current: 80 << 20, WorkingSet: 55 << 20, Anon: 60 << 20, File: 20 << 20, CPUSeconds: 4.56789}},
		// inactive_file above memory.current: the working set floors at 0.
		{"cgroupfs", uid2, vllmID, Stats{Current: 4 << 30, WorkingSet: 0, Anon: 3 << 30, File: 1 << 30, CPUSeconds: 0.000999}},
		{"cgroupfs", uid2, proxyID, Stats{Current: 50 << 20, WorkingSet: 40 << 20, Anon: 40 << 20, File: 10 << 20, CPUSeconds: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.layout+"/"+tt.id[:1], func(t *testing.T) {
			t.Parallel()
			r := fixture(tt.layout)
			p, err := r.FindContainer(tt.pod, tt.id)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Stats(p)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("stats = %+v, want %+v", got, tt.want)
			}
		})
	}
	// A process seen through the agent's private cgroup namespace: its
	// path is relative to the agent's cgroup. It names the container, and
	// the directory comes from searching the mount, not from that path.
	r := fixture("systemd")
	ref, err := r.ContainerOf(1004)
	if err != nil || ref.ContainerID != proxyID || ref.PodUID != uid || ref.Path != "" {
		t.Fatalf("pid 1004 (outside the cgroup namespace): %+v, %v", ref, err)
	}
	if p, err := r.FindContainer(uid, proxyID); err != nil || !strings.HasPrefix(p, "/kubepods.slice/") {
		t.Fatalf("FindContainer after ContainerOf(1004): %q, %v; want the directory under kubepods.slice", p, err)
	} else if st, err := r.Stats(p); err != nil || st.Current != 80<<20 {
		t.Fatalf("stats of the proxy: %+v, %v", st, err)
	}
	if _, err := fixture("systemd").FindContainer(uid, strings.Repeat("d", 64)); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("unknown container: err = %v, want ErrNoCgroup", err)
	}
}

func TestDetectRoot(t *testing.T) {
	t.Parallel()
	for layout, want := range map[string]string{"systemd": "/host/cgroup", "cgroupfs": "/sys/fs/cgroup/unified"} {
		got, err := DetectRoot(filepath.Join("testdata", layout, "proc"))
		if err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", layout, got, err, want)
		}
	}
	if _, err := DetectRoot("testdata/none"); err == nil {
		t.Error("missing mountinfo accepted")
	}
}

// TestOnThisHost reads the real /proc and cgroup mount: the test process is
// not in a Kubernetes container, and its cgroup must be readable.
func TestOnThisHost(t *testing.T) {
	t.Parallel()
	root, err := DetectRoot("/proc")
	if err != nil {
		t.Skipf("no cgroup v2 mount on this host: %v", err)
	}
	r := NewReader("/proc", root)
	_, err = r.ContainerOf(uint32(os.Getpid()))
	if !errors.Is(err, ErrNotContainer) {
		t.Errorf("this test process: err = %v, want ErrNotContainer", err)
	}
}
