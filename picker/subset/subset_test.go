package subset

import (
	"fmt"
	"slices"
	"testing"
)

func TestHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.0.0.1:8000", "10.0.0.1"},
		{"10.0.0.1", "10.0.0.1"},
		{"[fd00::1]:8000", "fd00::1"},
		{"[fd00::1]", "fd00::1"},
		{"fd00::1", "fd00::1"},
		{"[fd00::1", "[fd00::1"}, // unpaired: kept, matches nothing
		{"", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := Host(tc.in); got != tc.want {
				t.Errorf("Host(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	many := make([]string, 0, 20)
	for i := range 20 {
		many = append(many, fmt.Sprintf("10.0.1.%d:8000", i))
	}
	for _, tc := range []struct {
		name    string
		h       *Hosts
		addr    string
		want    bool
		empty   bool
		entries []string
	}{
		{"no hint allows all", nil, "10.0.0.9:1", true, false, nil},
		{"empty hint allows none", New(nil), "10.0.0.1:8000", false, true, []string{}},
		{"blank entries are dropped", New([]string{" ", ""}), "10.0.0.1:8000", false, true, []string{}},
		{"matched by IP, port ignored", New([]string{"10.0.0.1:9000"}), "10.0.0.1:8000", true, false, []string{"10.0.0.1:9000"}},
		{"bare IP entry", New([]string{" 10.0.0.1 "}), "10.0.0.1:8000", true, false, []string{"10.0.0.1"}},
		{"other IP", New([]string{"10.0.0.1:8000"}), "10.0.0.2:8000", false, false, []string{"10.0.0.1:8000"}},
		{"v6", New([]string{"[fd00::1]:8000"}), "[fd00::1]:8000", true, false, []string{"[fd00::1]:8000"}},
		{"large hint, member", New(many), "10.0.1.17:8000", true, false, many},
		{"large hint, not a member", New(many), "10.0.2.17:8000", false, false, many},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.h.Allows(tc.addr); got != tc.want {
				t.Errorf("Allows(%q) = %v, want %v", tc.addr, got, tc.want)
			}
			if got := tc.h.AllowsHost(Host(tc.addr)); got != tc.want {
				t.Errorf("AllowsHost(%q) = %v, want %v", Host(tc.addr), got, tc.want)
			}
			if got := tc.h.Empty(); got != tc.empty {
				t.Errorf("Empty() = %v, want %v", got, tc.empty)
			}
			if got := tc.h.Entries(); !slices.Equal(got, tc.entries) || (got == nil) != (tc.entries == nil) {
				t.Errorf("Entries() = %q, want %q", got, tc.entries)
			}
		})
	}
}
