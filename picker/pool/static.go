package pool

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrBadEndpoints is wrapped by every error ParseEndpoints returns.
var ErrBadEndpoints = errors.New("bad --endpoints")

// Static is a fixed list of endpoints, for running without Kubernetes.
type Static struct {
	publisher
}

var _ Runnable = (*Static)(nil)

// NewStatic parses a comma-separated ip:port list (see ParseEndpoints).
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
// [ip]:port) into ready endpoints, sorted. Spaces around entries are
// ignored. The error names every bad entry: empty, not an IP literal with a
// port, port 0, unspecified address, IPv6 zone, or a repeat.
func ParseEndpoints(list string) ([]Endpoint, error) {
	if strings.TrimSpace(list) == "" {
		return nil, fmt.Errorf("%w: no endpoints given", ErrBadEndpoints)
	}
	var (
		eps  []Endpoint
		bad  []string
		seen = map[netip.AddrPort]bool{}
	)
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		ap, err := parseAddrPort(entry)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("entry %d %q: %v", i+1, entry, err))
		case seen[ap]:
			bad = append(bad, fmt.Sprintf("entry %d %q: repeated", i+1, entry))
		default:
			seen[ap] = true
			eps = append(eps, Endpoint{IP: ap.Addr().String(), Port: int(ap.Port()), Ready: true})
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: want ip:port,ip:port; %s", ErrBadEndpoints, strings.Join(bad, "; "))
	}
	return sortEndpoints(eps), nil
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
