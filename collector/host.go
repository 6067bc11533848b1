package collector

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Host is where the host's /proc and cgroup v2 mount are, for every
// collector that reads them (pods, ztunnel). Set them with --host.proc-root
// and --host.cgroup-root; the per-collector flags they replace
// (--pods.proc-root, --ztunnel.proc-root, --pods.cgroup-root,
// --ztunnel.cgroup-root) are kept for one release as deprecated aliases.
type Host struct {
	// ProcRoot is the host's /proc (the agent needs hostPID).
	ProcRoot string
	// CgroupRoot is the cgroup v2 mount; empty: found in ProcRoot's
	// mountinfo.
	CgroupRoot string

	// given records the value of each host path flag set, by flag name,
	// to tell conflicting aliases apart; nil before AddFlags.
	given map[string]string
}

// The host path flags and their deprecated aliases.
const (
	flagProcRoot   = "host.proc-root"
	flagCgroupRoot = "host.cgroup-root"
)

// deprecatedHostPrefixes are the collectors whose own --<name>.proc-root
// and --<name>.cgroup-root flags are aliases of the host's.
func deprecatedHostPrefixes() []string { return []string{"pods", "ztunnel"} }

// DefaultHost returns the paths of an agent running in a pod with the
// host's PID namespace.
func DefaultHost() Host { return Host{ProcRoot: "/proc"} }

// AddFlags registers --host.proc-root and --host.cgroup-root and their
// deprecated aliases.
func (h *Host) AddFlags(fs *flag.FlagSet) {
	h.given = map[string]string{}
	fs.Var(&hostPath{h.given, flagProcRoot, &h.ProcRoot}, flagProcRoot, "the host's /proc (the agent needs hostPID)")
	fs.Var(&hostPath{h.given, flagCgroupRoot, &h.CgroupRoot}, flagCgroupRoot, "the host's cgroup v2 mount (empty: found in mountinfo)")
	for _, p := range deprecatedHostPrefixes() {
		fs.Var(&hostPath{h.given, p + ".proc-root", &h.ProcRoot}, p+".proc-root", "deprecated: use --"+flagProcRoot)
		fs.Var(&hostPath{h.given, p + ".cgroup-root", &h.CgroupRoot}, p+".cgroup-root", "deprecated: use --"+flagCgroupRoot)
	}
}

// Validate reports an empty /proc path, and flags for one path that were
// given different values.
func (h *Host) Validate() error {
	var errs []error
	if h.ProcRoot == "" {
		errs = append(errs, fmt.Errorf("--%s must not be empty", flagProcRoot))
	}
	for _, target := range []string{flagProcRoot, flagCgroupRoot} {
		suffix := strings.TrimPrefix(target, "host")
		var set []string
		values := map[string]bool{}
		for _, name := range h.names(suffix) {
			if v, ok := h.given[name]; ok {
				set = append(set, fmt.Sprintf("--%s=%q", name, v))
				values[v] = true
			}
		}
		if len(values) > 1 {
			errs = append(errs, fmt.Errorf("%s disagree: the old flags are deprecated aliases of --%s; give only that one", strings.Join(set, " and "), target))
		}
	}
	return errors.Join(errs...)
}

// Deprecated returns the deprecated alias flags that were given, with the
// flag to use instead, for a warning at start.
func (h *Host) Deprecated() [][2]string {
	var out [][2]string
	for _, p := range deprecatedHostPrefixes() {
		for _, suffix := range []string{".proc-root", ".cgroup-root"} {
			if _, ok := h.given[p+suffix]; ok {
				out = append(out, [2]string{p + suffix, "host" + suffix})
			}
		}
	}
	return out
}

// names lists the flags of one path: the host's, then its aliases.
func (h *Host) names(suffix string) []string {
	out := []string{"host" + suffix}
	for _, p := range deprecatedHostPrefixes() {
		out = append(out, p+suffix)
	}
	return out
}

// hostPath is one host path flag: it sets the path and records that it
// was given.
type hostPath struct {
	given  map[string]string
	name   string
	target *string
}

func (p *hostPath) String() string {
	if p == nil || p.target == nil {
		return ""
	}
	return *p.target
}

func (p *hostPath) Set(v string) error {
	*p.target = v
	p.given[p.name] = v
	return nil
}
