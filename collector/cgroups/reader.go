package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ErrProcessGone marks a PID that exited between being listed and read:
// callers skip it quietly.
var ErrProcessGone = errors.New("process exited")

// Reader reads /proc and cgroup v2 files under configurable roots.
type Reader struct {
	procRoot, cgroupRoot string

	mu   sync.Mutex
	dirs map[string]string // container ID → cgroup path (relative)
}

// NewReader reads processes under procRoot (normally /proc, or the host's
// /proc mounted into the agent) and cgroups under cgroupRoot (the cgroup v2
// mount; see DetectRoot).
func NewReader(procRoot, cgroupRoot string) *Reader {
	return &Reader{procRoot: procRoot, cgroupRoot: cgroupRoot, dirs: map[string]string{}}
}

// ContainerOf returns the container a process runs in.
func (r *Reader) ContainerOf(pid uint32) (Ref, error) {
	b, err := os.ReadFile(filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10), "cgroup"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return Ref{}, fmt.Errorf("pid %d: %w", pid, ErrProcessGone)
		}
		return Ref{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	p, err := ParseProcCgroup(string(b))
	if err != nil {
		return Ref{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	ref, err := ParsePath(p)
	if err != nil {
		return Ref{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	if strings.HasPrefix(p, "/..") {
		// The process is outside the agent's own cgroup namespace (a pod
		// with a private cgroup namespace, the default under cgroup v2):
		// the path is relative to the agent's cgroup, not to the mount,
		// so it names the container but not its directory. FindContainer
		// finds that by searching the mount.
		ref.Path = ""
		return ref, nil
	}
	r.remember(ref.ContainerID, ref.Path)
	return ref, nil
}

func (r *Reader) remember(id, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs[id] = path
}

// Forget drops cached directories of containers not in keep, so the cache
// follows the node's containers.
func (r *Reader) Forget(keep func(containerID string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.dirs {
		if !keep(id) {
			delete(r.dirs, id)
		}
	}
}

// ErrNoCgroup marks a container whose cgroup directory was not found.
var ErrNoCgroup = errors.New("container cgroup not found")

// FindContainer returns the cgroup path (relative to the root) of a
// container, searching the kubepods hierarchy once and caching the answer.
func (r *Reader) FindContainer(podUID, containerID string) (string, error) {
	r.mu.Lock()
	p, ok := r.dirs[containerID]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := r.search(podUID, containerID)
	if err != nil {
		return "", err
	}
	r.remember(containerID, p)
	return p, nil
}

// search walks only kubelet-owned directories, down to the pod's, and looks
// for the container among its children.
func (r *Reader) search(podUID, containerID string) (string, error) {
	const maxDepth = 6
	level := []string{"/"}
	for depth := 0; depth < maxDepth && len(level) > 0; depth++ {
		var next []string
		for _, dir := range level {
			entries, err := os.ReadDir(filepath.Join(r.cgroupRoot, dir))
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !e.IsDir() {
					continue
				}
				name := e.Name()
				child := filepath.Join(dir, name)
				if uid, ok := parsePodSeg(name); ok {
					if uid == podUID {
						return r.inPod(child, containerID)
					}
					continue
				}
				if strings.Contains(name, "kubepods") || strings.Contains(name, "kubelet") ||
					name == "burstable" || name == "besteffort" {
					next = append(next, child)
				}
			}
		}
		level = next
	}
	return "", fmt.Errorf("pod %s container %.12s: %w", podUID, containerID, ErrNoCgroup)
}

func (r *Reader) inPod(podDir, containerID string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(r.cgroupRoot, podDir))
	if err != nil {
		return "", fmt.Errorf("pod cgroup %s: %w", podDir, err)
	}
	for _, e := range entries {
		if id, _, err := parseContainerSeg(e.Name()); err == nil && id == containerID {
			return filepath.Join(podDir, e.Name()), nil
		}
	}
	return "", fmt.Errorf("container %.12s in %s: %w", containerID, podDir, ErrNoCgroup)
}

// Stats is a container's memory and CPU use from cgroup v2.
type Stats struct {
	// Current is memory.current: all memory charged to the cgroup.
	Current uint64
	// WorkingSet is Current minus inactive_file, floored at 0, as the
	// kubelet computes it (what an OOM decision looks at).
	WorkingSet uint64
	Anon, File uint64
	// CPUSeconds is cpu.stat usage_usec in seconds.
	CPUSeconds float64
}

// Stats reads a container's cgroup files.
func (r *Reader) Stats(cgroupPath string) (Stats, error) {
	dir := filepath.Join(r.cgroupRoot, cgroupPath)
	var s Stats
	b, err := os.ReadFile(filepath.Join(dir, "memory.current"))
	if err != nil {
		return s, fmt.Errorf("memory.current: %w", err)
	}
	if s.Current, err = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err != nil {
		return s, fmt.Errorf("memory.current: %w", err)
	}
	mem, err := readKeyed(filepath.Join(dir, "memory.stat"))
	if err != nil {
		return s, err
	}
	s.Anon, s.File = mem["anon"], mem["file"]
	if inactive := mem["inactive_file"]; inactive < s.Current {
		s.WorkingSet = s.Current - inactive
	}
	cpu, err := readKeyed(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return s, err
	}
	s.CPUSeconds = float64(cpu["usage_usec"]) / 1e6
	return s, nil
}

// readKeyed reads a "key value" per line file such as memory.stat.
func readKeyed(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	out := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, sc.Err()
}

// DetectRoot finds the cgroup v2 mount point in procRoot/self/mountinfo.
// Hosts with a hybrid layout mount it somewhere other than /sys/fs/cgroup,
// so it is read, never assumed.
func DetectRoot(procRoot string) (string, error) {
	f, err := os.Open(filepath.Join(procRoot, "self", "mountinfo"))
	if err != nil {
		return "", fmt.Errorf("mountinfo: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options… - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) >= 5 && len(tail) >= 1 && tail[0] == "cgroup2" {
			return fields[4], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("mountinfo: %w", err)
	}
	return "", errors.New("no cgroup2 mount in mountinfo: cgroup v2 is required")
}
