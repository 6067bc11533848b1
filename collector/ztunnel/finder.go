package ztunnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/cgroups"
	"github.com/headroom-dev/headroom/collector/cri"
)

// Runtime returns the container runtime's latest view; nil when there is
// none (no pods collector, or the runtime has not answered).
type Runtime func() *cri.View

// Found is where ztunnel runs.
type Found struct {
	PIDs []uint32
	// Cgroups are its container cgroups, relative to the cgroup root.
	Cgroups []string
	// OwnNetns are the network namespaces of its processes: traffic
	// there is its control plane.
	OwnNetns map[uint32]bool
	// Namespace and Pod name its pod when the runtime knows it.
	Namespace, Pod string
}

// PodRef names the pod of a network namespace.
type PodRef struct {
	Namespace, Name, UID string
}

// Finder finds ztunnel and the pods of network namespaces, from /proc,
// cgroups and the runtime's cached view. Both ztunnel sources share one;
// its answers are cached for Options.Refresh.
type Finder struct {
	o        Options
	procRoot string
	// root is the cgroup v2 mount.
	root    string
	cg      *cgroups.Reader
	runtime Runtime
	now     func() time.Time

	mu      sync.Mutex
	found   Found
	foundAt time.Time
	pods    map[uint32]PodRef // netns inode → pod; zero PodRef: not a pod
	scanAt  time.Time
}

// NewFinder returns a finder of the host's /proc and cgroups; runtime may
// be nil.
func NewFinder(o Options, host collector.Host, runtime Runtime) (*Finder, error) {
	root := host.CgroupRoot
	if root == "" {
		r, err := cgroups.DetectRoot(host.ProcRoot)
		if err != nil {
			return nil, err
		}
		root = r
	}
	if runtime == nil {
		runtime = func() *cri.View { return nil }
	}
	return &Finder{o: o, procRoot: host.ProcRoot, root: root, cg: cgroups.NewReader(host.ProcRoot, root), runtime: runtime, now: time.Now, pods: map[uint32]PodRef{}}, nil
}

// CgroupRoot is the cgroup v2 mount the finder reads.
func (f *Finder) CgroupRoot() string { return f.root }

// Find returns where ztunnel runs, looking again once Refresh has passed.
func (f *Finder) Find() (Found, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.foundAt.IsZero() && f.now().Sub(f.foundAt) < f.o.Refresh {
		return f.found, nil
	}
	found, err := f.find()
	if err != nil {
		return Found{}, err
	}
	f.found, f.foundAt = found, f.now()
	return found, nil
}

func (f *Finder) find() (Found, error) {
	found := Found{OwnNetns: map[uint32]bool{}}
	pids, err := f.listPIDs()
	if err != nil {
		return found, err
	}
	view := f.runtime()
	for _, pid := range pids {
		if comm, _ := f.readProc(pid, "comm"); strings.TrimSpace(comm) != f.o.ProcessName {
			continue
		}
		b, err := f.readProc(pid, "cgroup")
		if err != nil {
			continue // exited
		}
		p, err := cgroups.ParseProcCgroup(b)
		if err != nil {
			continue
		}
		found.PIDs = append(found.PIDs, pid)
		found.Cgroups = append(found.Cgroups, p)
		if ns, err := f.netnsOf(pid); err == nil {
			found.OwnNetns[ns] = true
		}
		if ref, err := cgroups.ParsePath(p); err == nil && view != nil {
			if pod, _, ok := view.Container(ref.ContainerID); ok {
				found.Namespace, found.Pod = pod.Namespace, pod.Name
			}
		}
	}
	// The runtime names ztunnel's pod by label even where /proc is not
	// the host's (no hostPID).
	if view != nil && f.o.PodLabel != "" {
		for _, pod := range view.Pods {
			if pod.Meta.App != f.o.PodLabel {
				continue
			}
			found.Namespace, found.Pod = pod.Namespace, pod.Name
			for _, c := range pod.Containers {
				if dir, err := f.cg.FindContainer(pod.UID, c.ID); err == nil {
					found.Cgroups = append(found.Cgroups, dir)
				}
			}
		}
	}
	slices.Sort(found.PIDs)
	found.Cgroups = normalize(found.Cgroups)
	return found, nil
}

// normalize cleans, sorts and de-duplicates cgroup paths.
func normalize(paths []string) []string {
	for i, p := range paths {
		paths[i] = filepath.Clean("/" + p)
	}
	slices.Sort(paths)
	return slices.Compact(paths)
}

func (f *Finder) listPIDs() ([]uint32, error) {
	ents, err := os.ReadDir(f.procRoot)
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	out := make([]uint32, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.ParseUint(e.Name(), 10, 32); err == nil {
			out = append(out, uint32(pid))
		}
	}
	return out, nil
}

func (f *Finder) readProc(pid uint32, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(f.procRoot, strconv.FormatUint(uint64(pid), 10), name))
	return string(b), err
}

// netnsOf reads a process's network namespace inode from the
// /proc/<pid>/ns/net link ("net:[4026531993]").
func (f *Finder) netnsOf(pid uint32) (uint32, error) {
	l, err := os.Readlink(filepath.Join(f.procRoot, strconv.FormatUint(uint64(pid), 10), "ns", "net"))
	if err != nil {
		return 0, err
	}
	return parseNetnsLink(l)
}

var errNetnsLink = errors.New("not a network namespace link")

func parseNetnsLink(l string) (uint32, error) {
	v, ok := strings.CutPrefix(l, "net:[")
	if !ok || !strings.HasSuffix(v, "]") {
		return 0, fmt.Errorf("%q: %w", l, errNetnsLink)
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(v, "]"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", l, errNetnsLink)
	}
	return uint32(n), nil
}

// Pods names the pods of network namespaces. Namespaces not seen before
// cost one /proc scan (a readlink per process), at most once per Refresh;
// until then, and for namespaces of no pod, the PodRef is empty.
func (f *Finder) Pods(netns []uint32) map[uint32]PodRef {
	f.mu.Lock()
	defer f.mu.Unlock()
	var unknown []uint32
	for _, ns := range netns {
		if _, ok := f.pods[ns]; !ok {
			unknown = append(unknown, ns)
		}
	}
	if len(unknown) > 0 && (f.scanAt.IsZero() || f.now().Sub(f.scanAt) >= f.o.Refresh) {
		f.scan(unknown)
		f.scanAt = f.now()
	}
	out := make(map[uint32]PodRef, len(netns))
	for _, ns := range netns {
		out[ns] = f.pods[ns]
	}
	return out
}

// scan resolves unknown namespaces through any process inside them.
func (f *Finder) scan(unknown []uint32) {
	want := map[uint32]bool{}
	for _, ns := range unknown {
		want[ns] = true
		f.pods[ns] = PodRef{}
	}
	view := f.runtime()
	pids, err := f.listPIDs()
	if err != nil || view == nil {
		return
	}
	for _, pid := range pids {
		ns, err := f.netnsOf(pid)
		if err != nil || !want[ns] {
			continue
		}
		ref, err := f.cg.ContainerOf(pid)
		if err != nil {
			continue
		}
		if pod, _, ok := view.Container(ref.ContainerID); ok {
			f.pods[ns] = PodRef{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
			delete(want, ns)
		}
	}
}

// Forget drops namespaces no longer counted.
func (f *Finder) Forget(keep func(netns uint32) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ns := range f.pods {
		if !keep(ns) {
			delete(f.pods, ns)
		}
	}
}
