package kubenode

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Tree is a /proc and cgroup v2 tree on disk, laid out as the systemd
// cgroup driver with containerd lays out a node.
type Tree struct {
	Proc, Cgroup string
}

// NewTree makes an empty tree under dir.
func NewTree(dir string) (*Tree, error) {
	t := &Tree{Proc: filepath.Join(dir, "proc"), Cgroup: filepath.Join(dir, "cgroup")}
	for _, d := range []string{t.Proc, t.Cgroup} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ContainerDir is a container's cgroup path, relative to the root.
func ContainerDir(podUID, containerID string) string {
	return "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(podUID, "-", "_") +
		".slice/cri-containerd-" + containerID + ".scope"
}

// AddContainer writes a container's cgroup with the given memory (bytes)
// and CPU time.
func (t *Tree) AddContainer(podUID, containerID string, workingSet, inactiveFile, anon uint64, cpuSeconds float64) error {
	dir := filepath.Join(t.Cgroup, ContainerDir(podUID, containerID))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"memory.current": strconv.FormatUint(workingSet+inactiveFile, 10) + "\n",
		"memory.stat":    fmt.Sprintf("anon %d\nfile %d\ninactive_file %d\n", anon, inactiveFile, inactiveFile),
		"cpu.stat":       fmt.Sprintf("usage_usec %d\n", uint64(cpuSeconds*1e6)),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// AddProcess places a PID in a container (podUID "" puts it outside
// Kubernetes, in a system service).
func (t *Tree) AddProcess(pid uint32, podUID, containerID string) error {
	dir := filepath.Join(t.Proc, strconv.FormatUint(uint64(pid), 10))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := "/system.slice/some.service"
	if podUID != "" {
		p = ContainerDir(podUID, containerID)
	}
	return os.WriteFile(filepath.Join(dir, "cgroup"), []byte("0::"+p+"\n"), 0o644)
}
