//go:build !cgo

package gpusim

// Profiles lists nothing: the simulator is built on go-nvml, which needs cgo.
func Profiles() []string { return nil }
