// Package loopback tells whether a host or address stays on this machine:
// the insecure (plaintext, unauthenticated) telemetry mode is allowed only
// there, on both the agent's and the picker's side.
package loopback

import "net"

// Host reports whether host is "localhost" or a loopback IP.
func Host(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Address reports whether the host of a host:port address is loopback. An
// empty host (all interfaces) is not.
func Address(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && Host(host)
}
