package cgroups

import (
	"errors"
	"strings"
	"testing"
)

const (
	uid  = "2f1e6a4c-9b1d-4c5e-8f0a-1b2c3d4e5f60"
	uidU = "2f1e6a4c_9b1d_4c5e_8f0a_1b2c3d4e5f60"
	cid  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestParsePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, runtime, want string
	}{
		{"systemd containerd burstable", "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", "containerd",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope"},
		{"systemd crio besteffort", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidU + ".slice/crio-" + cid + ".scope", "crio", ""},
		{"systemd guaranteed", "/kubepods.slice/kubepods-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", "containerd", ""},
		{"systemd docker", "/kubepods.slice/kubepods-pod" + uidU + ".slice/docker-" + cid + ".scope", "docker", ""},
		{"cgroupfs containerd", "/kubepods/burstable/pod" + uid + "/" + cid, "", "/kubepods/burstable/pod" + uid + "/" + cid},
		{"cgroupfs crio", "/kubepods/pod" + uid + "/crio-" + cid, "crio", ""},
		{"nested under kind", "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope", "containerd", ""},
		{"container sub-cgroup", "/kubepods/burstable/pod" + uid + "/" + cid + "/init", "", "/kubepods/burstable/pod" + uid + "/" + cid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ref, err := ParsePath(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if ref.PodUID != uid || ref.ContainerID != cid || ref.Runtime != tt.runtime {
				t.Errorf("got %+v", ref)
			}
			if tt.want != "" && ref.Path != tt.want {
				t.Errorf("path = %s, want %s", ref.Path, tt.want)
			}
		})
	}
}

func TestParsePathRejects(t *testing.T) {
	t.Parallel()
	for _, p := range []string{
		"/", "/system.slice/containerd.service", "/user.slice/user-0.slice/session-1.scope",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice", // the pod itself
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/crio-conmon-" + cid + ".scope",
		"/kubepods/burstable/pod" + uid + "/notacontainer",
		"/kubepods/burstable/podnot-a-uid/" + cid,
		"/kubepods/burstable/pod" + uid + "/" + strings.ToUpper(cid),
	} {
		if ref, err := ParsePath(p); !errors.Is(err, ErrNotContainer) {
			t.Errorf("ParsePath(%q) = %+v, %v; want ErrNotContainer", p, ref, err)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, content, want string }{
		{"v2", "0::/kubepods/pod" + uid + "/" + cid + "\n", "/kubepods/pod" + uid + "/" + cid},
		{"hybrid with unified line", "12:memory:/kubepods/x\n0::/kubepods/pod" + uid + "/" + cid + "\n", "/kubepods/pod" + uid + "/" + cid},
		{"v1 only", "11:cpu,cpuacct:/a\n9:memory:/kubepods/pod" + uid + "/" + cid + "\n", "/kubepods/pod" + uid + "/" + cid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseProcCgroup(tt.content)
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := ParseProcCgroup("garbage"); err == nil {
		t.Error("garbage accepted")
	}
}

// FuzzParsePath checks the parser never panics and that what it accepts is
// a well-formed reference whose path is a prefix of the input.
func FuzzParsePath(f *testing.F) {
	f.Add("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + cid + ".scope")
	f.Add("/kubepods/pod" + uid + "/crio-" + cid)
	f.Add("/kubepods/pod" + uid + "/" + cid + "/x/y")
	f.Fuzz(func(t *testing.T, p string) {
		ref, err := ParsePath(p)
		if err != nil {
			return
		}
		if !isUID(ref.PodUID) || !isHex64(ref.ContainerID) || !strings.HasPrefix(ref.Path, "/") {
			t.Fatalf("%q: malformed %+v", p, ref)
		}
		if again, err := ParsePath(ref.Path); err != nil || again != ref {
			t.Fatalf("%q: its own path %q parses to %+v, %v", p, ref.Path, again, err)
		}
	})
}
