package loadutil

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// Pin puts the child process on the last CPU and this process (every
// thread, and GOMAXPROCS) on the others, so a load generator does not steal
// the measured server's CPU. On one CPU it does nothing.
func Pin(child int) error {
	n := runtime.NumCPU()
	if n < 2 {
		return nil
	}
	var picker, load unix.CPUSet
	picker.Set(n - 1)
	for c := range n - 1 {
		load.Set(c)
	}
	if err := unix.SchedSetaffinity(child, &picker); err != nil {
		return fmt.Errorf("pin child: %w", err)
	}
	// Every thread of this process: affinity is per thread on Linux.
	tids, err := threads()
	if err != nil {
		return err
	}
	for _, tid := range tids {
		if err := unix.SchedSetaffinity(tid, &load); err != nil {
			return fmt.Errorf("pin load: %w", err)
		}
	}
	runtime.GOMAXPROCS(n - 1)
	return nil
}

func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, tid)
		}
	}
	return out, nil
}
