// Package loopback tells whether a host or address stays on this machine:
// the insecure (plaintext, unauthenticated) telemetry mode is allowed only
// there, on both the agent's and the picker's side.
package loopback

import "net/netip"

// Host reports whether host is a loopback IP literal (127.0.0.0/8, ::1,
// or 127.0.0.0/8 mapped into IPv6). Names, "localhost" included, are not
// accepted: what a name resolves to is up to /etc/hosts and DNS, so only a
// literal proves the traffic stays on this machine.
func Host(host string) bool {
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// Address reports whether the host of a host:port address is a loopback
// IP literal. An empty host (all interfaces) is not.
func Address(addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	return err == nil && Host(ap.Addr().String())
}
