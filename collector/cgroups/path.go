// Package cgroups maps processes to Kubernetes containers through
// /proc/<pid>/cgroup, finds a container's cgroup v2 directory, and reads its
// memory and CPU use. The proc and cgroup roots are parameters, so tests run
// on fixture trees and the agent on the host's, mounted where it likes.
package cgroups

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Ref identifies the container a cgroup belongs to.
type Ref struct {
	// PodUID is the pod's UID in its usual dashed form.
	PodUID string
	// ContainerID is the runtime's container ID (64 hex digits).
	ContainerID string
	// Runtime is "containerd", "crio", "docker", or "" when the path does
	// not say (cgroupfs driver with containerd).
	Runtime string
	// Path is the cgroup path, relative to the cgroup root; ContainerOf
	// leaves it empty for a process outside the agent's cgroup namespace
	// (FindContainer finds the directory).
	Path string
}

// ErrNotContainer marks a cgroup path outside any Kubernetes container
// (system services, the pod's own slice, CRI-O's conmon).
var ErrNotContainer = errors.New("not a Kubernetes container cgroup")

// ParsePath reads the pod UID and container ID from a cgroup path, for both
// cgroup drivers:
//
//	systemd:  …/kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope
//	          (crio-<id>.scope for CRI-O, docker-<id>.scope for cri-dockerd)
//	cgroupfs: …/kubepods/burstable/pod<uid>/<id> (crio-<id> for CRI-O)
//
// The QoS level is absent for Guaranteed pods, and the whole hierarchy may sit
// under another slice (kind, k3s).
func ParsePath(p string) (Ref, error) {
	p = path.Clean("/" + p)
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i := 0; i+1 < len(segs); i++ {
		uid, ok := parsePodSeg(segs[i])
		if !ok {
			continue
		}
		// The container is the next segment; deeper ones (a container's
		// own sub-cgroups) still belong to it.
		id, runtime, err := parseContainerSeg(segs[i+1])
		if err != nil {
			return Ref{}, fmt.Errorf("%w: %s: %w", ErrNotContainer, p, err)
		}
		return Ref{PodUID: uid, ContainerID: id, Runtime: runtime, Path: "/" + strings.Join(segs[:i+2], "/")}, nil
	}
	return Ref{}, fmt.Errorf("%w: %s", ErrNotContainer, p)
}

// parsePodSeg recognises a pod's cgroup segment in either driver's spelling.
func parsePodSeg(seg string) (string, bool) {
	if s, ok := strings.CutSuffix(seg, ".slice"); ok {
		// kubepods-pod<uid>.slice or kubepods-<qos>-pod<uid>.slice, with
		// the UID's dashes turned into underscores.
		// kind and k3s nest it as kubelet-kubepods-…-pod<uid>.slice.
		i := strings.LastIndex(s, "-pod")
		if i < 0 || !strings.Contains(s[:i], "kubepods") {
			return "", false
		}
		uid := strings.ReplaceAll(s[i+len("-pod"):], "_", "-")
		return uid, isUID(uid)
	}
	uid, ok := strings.CutPrefix(seg, "pod")
	return uid, ok && isUID(uid)
}

// parseContainerSeg recognises a container's cgroup segment.
func parseContainerSeg(seg string) (id, runtime string, err error) {
	s := strings.TrimSuffix(seg, ".scope")
	for _, p := range []struct{ prefix, runtime string }{
		{"cri-containerd-", "containerd"},
		{"crio-conmon-", ""},
		{"crio-", "crio"},
		{"docker-", "docker"},
	} {
		if rest, ok := strings.CutPrefix(s, p.prefix); ok {
			if p.runtime == "" {
				return "", "", errors.New("CRI-O conmon, not the container")
			}
			s, runtime = rest, p.runtime
			break
		}
	}
	if !isHex64(s) {
		return "", "", fmt.Errorf("segment %q is not a container ID", seg)
	}
	return s, runtime, nil
}

func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !isHexDigit(c) {
			return false
		}
	}
	return true
}

func isHexDigit(c rune) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// ParseProcCgroup picks the cgroup path out of a /proc/<pid>/cgroup file:
// the unified (cgroup v2, "0::") line, or on a hybrid host without one the
// memory controller's line.
func ParseProcCgroup(content string) (string, error) {
	var v1 string
	for _, line := range strings.Split(content, "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		ctrls, p, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		if id == "0" && ctrls == "" {
			return p, nil
		}
		for _, c := range strings.Split(ctrls, ",") {
			if c == "memory" {
				v1 = p
			}
		}
	}
	if v1 != "" {
		return v1, nil
	}
	return "", errors.New("no cgroup v2 or memory line")
}
