package imagebuild

import "strconv"

// spec is one image: which command it runs and how.
type spec struct {
	name, pkg, description string
	// cgo builds the command with cgo and puts the C library in the base.
	cgo   bool
	ports []int
	// tags are go build tags.
	tags []string
}

// pickerTags are the picker's build tags. grpcnotrace leaves out
// golang.org/x/net/trace, which gRPC only uses when grpc.EnableTracing is
// set (the picker never sets it) and which links html/template; with
// text/template's reflection gone the linker can drop unused methods, so
// the binary is a fifth smaller (docs/images.md).
var pickerTags = []string{"grpcnotrace"}

// agentTags are the agent's: the same, for the same reason (its binary 7 MB
// and its resident pages 5 MiB smaller, docs/benchmarks.md); the Makefile
// builds it so too, and internal/layering keeps the templates out.
var agentTags = []string{"grpcnotrace"}

// nonroot is the user both images run as unless told otherwise (the
// chart runs the agent as root, which it needs for the kubelet's and the
// runtime's sockets and other processes' /proc).
const nonroot = 65532

func specs() []spec {
	return []spec{
		{name: "headroom-agent", pkg: "./cmd/headroom-agent", cgo: true, ports: []int{9400}, tags: agentTags,
			description: "headroom-agent: GPU, pod and mesh telemetry of one node, as a Prometheus target and a stream to the pickers"},
		{name: "headroom-picker", pkg: "./cmd/headroom-picker", ports: []int{9002, 9003, 9004, 9090}, tags: pickerTags,
			description: "headroom-picker: a Gateway API Inference Extension endpoint picker that routes by GPU headroom"},
	}
}

func specByName(name string) (spec, bool) {
	for _, s := range specs() {
		if s.name == name {
			return s, true
		}
	}
	return spec{}, false
}

func (s spec) entrypoint() string { return "/usr/bin/" + s.name }

func (s spec) exposedPorts() map[string]struct{} {
	out := map[string]struct{}{}
	for _, p := range s.ports {
		out[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	return out
}
