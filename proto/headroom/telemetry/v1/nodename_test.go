package telemetryv1

import (
	"regexp"
	"strings"
	"testing"
)

// TestValidNodeName checks the hand-written label check against the
// regular expression the picker used before (a DNS subdomain, upper case
// allowed), on the edges of the grammar.
func TestValidNodeName(t *testing.T) {
	t.Parallel()
	oracle := regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$`)
	for _, tc := range []struct {
		name string
		in   string
		want bool
	}{
		{"simple", "gpu-node-a", true},
		{"one letter", "a", true},
		{"digits", "10", true},
		{"upper case", "GPU-Node-A", true},
		{"subdomain", "ip-10-0-0-1.ec2.internal", true},
		{"253 bytes", strings.Repeat("a", 253), true},
		{"254 bytes", strings.Repeat("a", 254), false},
		{"empty", "", false},
		{"wildcard", "*", false},
		{"leading hyphen", "-a", false},
		{"trailing hyphen", "a-", false},
		{"leading dot", ".a", false},
		{"trailing dot", "a.", false},
		{"empty label", "a..b", false},
		{"hyphen label", "a.-.b", false},
		{"underscore", "a_b", false},
		{"space", "a b", false},
		{"slash", "a/b", false},
		{"unicode", "nœud", false},
		{"NUL", "a\x00", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ValidNodeName(tc.in)
			if got != tc.want {
				t.Errorf("ValidNodeName(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if old := len(tc.in) > 0 && len(tc.in) <= 253 && oracle.MatchString(tc.in); old != got {
				t.Errorf("ValidNodeName(%q) = %v, the old regular expression says %v", tc.in, got, old)
			}
		})
	}
}

// FuzzValidNodeName holds the label check to the old regular expression.
func FuzzValidNodeName(f *testing.F) {
	oracle := regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*$`)
	for _, s := range []string{"a", "a.b", "a-.b", "", "a..b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) > 0 && len(s) <= 253 && oracle.MatchString(s)
		if got := ValidNodeName(s); got != want {
			t.Fatalf("ValidNodeName(%q) = %v, the old regular expression says %v", s, got, want)
		}
	})
}
