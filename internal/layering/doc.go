// Package layering holds the test that keeps headroom's imports running
// one way:
//
//	cmd → agent, picker → collector → snapshot, proto
//
// No production package under collector/ imports agent/..., picker/... or
// sim/...; none under agent/ imports picker/... or sim/... (the commands
// and the demo wire the simulator in); snapshot/ and proto/ import no
// other package of headroom's. Tests may import what they like. It also
// keeps the agent binary free of text/template, whose calls of methods by
// name make the linker keep every exported method. The package has no code
// of its own.
package layering
