// Package subset is the gateway's subset hint: the endpoints one request
// may be routed to, as Envoy sends them in the request's metadata
// (filter_metadata["envoy.lb.subset_hint"]
// ["x-gateway-destination-endpoint-subset"]). The ext_proc server parses
// the hint once into a [Hosts]; the scorer filters by it and the server
// checks the decision against the same value, so both sides match
// entries the same way: by host only, ports ignored, as the reference
// endpoint picker does.
package subset

import (
	"net"
	"strings"
)

// small is the size up to which Allows scans the list; above it a set is
// built once, when the hint is parsed.
const small = 8

// Hosts is a parsed subset hint. A nil *Hosts means the gateway sent no
// hint and allows every endpoint; a non-nil Hosts with no entries allows
// none. A Hosts is not modified after New, so it is safe to share.
type Hosts struct {
	entries []string
	hosts   []string
	set     map[string]struct{}
}

// New parses the hint's entries ("ip:port", "[v6]:port", "ip" or "[v6]").
// Entries are trimmed; blank ones are dropped. The result is never nil.
func New(entries []string) *Hosts {
	h := &Hosts{entries: make([]string, 0, len(entries)), hosts: make([]string, 0, len(entries))}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		h.entries = append(h.entries, e)
		h.hosts = append(h.hosts, Host(e))
	}
	if len(h.hosts) > small {
		h.set = make(map[string]struct{}, len(h.hosts))
		for _, host := range h.hosts {
			h.set[host] = struct{}{}
		}
	}
	return h
}

// Host returns the host of an "ip:port", "[v6]:port", "ip" or "[v6]"
// address. Anything else is returned as given (it will match nothing a
// pool holds).
func Host(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	if n := len(addr); n >= 2 && addr[0] == '[' && addr[n-1] == ']' {
		return addr[1 : n-1]
	}
	return addr
}

// AllowsHost reports whether the hint names host. A nil h allows all.
func (h *Hosts) AllowsHost(host string) bool {
	if h == nil {
		return true
	}
	if h.set != nil {
		_, ok := h.set[host]
		return ok
	}
	for _, x := range h.hosts {
		if x == host {
			return true
		}
	}
	return false
}

// Allows reports whether the hint names the host of addr ("ip:port" or
// "ip"). A nil h allows all.
func (h *Hosts) Allows(addr string) bool {
	if h == nil {
		return true
	}
	return h.AllowsHost(Host(addr))
}

// Empty reports whether h is a hint that allows nothing.
func (h *Hosts) Empty() bool { return h != nil && len(h.entries) == 0 }

// Entries returns the hint's entries as given (trimmed); nil for a nil h.
// The caller must not modify the slice.
func (h *Hosts) Entries() []string {
	if h == nil {
		return nil
	}
	return h.entries
}

// String lists the entries, for messages.
func (h *Hosts) String() string {
	if h == nil {
		return "<no subset hint>"
	}
	return "[" + strings.Join(h.entries, " ") + "]"
}
