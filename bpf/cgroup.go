package bpf

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// CgroupID returns the id of the cgroup v2 directory dir: what the kernel
// side compares (kernfs node id, the directory's inode on 64-bit kernels).
func CgroupID(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, fmt.Errorf("cgroup id: %w", err)
	}
	return st.Ino, nil
}
