// Package faults is headroom's fault suite: each test injects one failure
// into real components (the agent on simulated GPUs with a fake kubelet,
// runtime and model servers, the agent's report streamer, the whole
// picker, a real kube-apiserver and etcd from envtest) and asserts the
// outcome docs/reliability.md promises for it: what keeps working, what is
// marked stale or unready, what the gateway is told, and how it recovers.
//
// Faults a component's own tests already cover are cited in
// docs/reliability.md rather than repeated here; this package holds the
// ones that cross components. Every wait polls a condition with a
// generous deadline, so a loaded two-core machine slows the suite down
// without failing it. The API-server tests need the envtest binaries
// (KUBEBUILDER_ASSETS, or `make envtest-assets`): they fail without them
// and are left out by -short. The tests with simulated GPUs need cgo, as
// go-nvml does.
//
// Only tests live here; the package has no API.
package faults
