package pool

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// ErrBadEndpoints is wrapped by every error ParseEndpoints returns.
var ErrBadEndpoints = errors.New("bad --endpoints")

// Static is a fixed list of endpoints, for running without Kubernetes.
type Static struct {
	publisher
}

var _ Runnable = (*Static)(nil)

// NewStatic parses a comma-separated ip:port[@node] list (see
// ParseEndpoints).
// Updated is signalled once, for the initial list.
func NewStatic(list string) (*Static, error) {
	eps, err := ParseEndpoints(list)
	if err != nil {
		return nil, err
	}
	s := &Static{publisher: newPublisher()}
	s.publish(eps)
	return s, nil
}

// Synced implements Source: the list is complete from the start.
func (s *Static) Synced() bool { return true }

// Run implements Runnable: there is nothing to watch, so it waits for ctx.
func (s *Static) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// ParseEndpoints parses a comma-separated list of IP:port (IPv6 as
// [ip]:port), each optionally followed by @node, the node the server runs
// on, into ready endpoints, sorted. A node named here means only that
// node's agent reports for the endpoint; without one, the endpoint takes
// the report of the one node that claims its IP, and none when two do.
// Spaces around entries are ignored. The error names every bad entry:
// empty, not an IP literal with a port, port 0, unspecified address, IPv6
// zone, a node that is not a node name, a repeat, or one IP given two
// nodes.
func ParseEndpoints(list string) ([]Endpoint, error) {
	if strings.TrimSpace(list) == "" {
		return nil, fmt.Errorf("%w: no endpoints given", ErrBadEndpoints)
	}
	var (
		eps    []Endpoint
		bad    []string
		seen   = map[netip.AddrPort]bool{}
		nodeOf = map[netip.Addr]string{}
	)
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		ap, node, err := parseEntry(entry)
		prev, named := nodeOf[ap.Addr()]
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("entry %d %q: %v", i+1, entry, err))
		case seen[ap]:
			bad = append(bad, fmt.Sprintf("entry %d %q: repeated", i+1, entry))
		case named && prev != node:
			bad = append(bad, fmt.Sprintf("entry %d %q: %s is on node %q in an earlier entry", i+1, entry, ap.Addr(), prev))
		default:
			seen[ap], nodeOf[ap.Addr()] = true, node
			eps = append(eps, Endpoint{IP: ap.Addr().String(), Port: int(ap.Port()), Ready: true, Node: node})
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: want ip:port[@node],ip:port[@node]; %s", ErrBadEndpoints, strings.Join(bad, "; "))
	}
	return sortEndpoints(eps), nil
}

// parseEntry splits ip:port[@node].
func parseEntry(entry string) (netip.AddrPort, string, error) {
	addr, node, hasNode := strings.Cut(entry, "@")
	if hasNode && !telemetryv1.ValidNodeName(node) {
		return netip.AddrPort{}, "", fmt.Errorf("node %q is not a node name (a DNS subdomain)", node)
	}
	ap, err := parseAddrPort(addr)
	return ap, node, err
}

func parseAddrPort(entry string) (netip.AddrPort, error) {
	if entry == "" {
		return netip.AddrPort{}, errors.New("empty")
	}
	ap, err := netip.ParseAddrPort(entry)
	switch {
	case err != nil:
		return netip.AddrPort{}, errors.New("not an IP literal with a port (ip:port or [ipv6]:port)")
	case ap.Port() == 0:
		return netip.AddrPort{}, errors.New("port 0")
	case ap.Addr().IsUnspecified():
		return netip.AddrPort{}, errors.New("unspecified address")
	case ap.Addr().Zone() != "":
		return netip.AddrPort{}, errors.New("IPv6 zone not allowed")
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
