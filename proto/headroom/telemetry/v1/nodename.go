package telemetryv1

// ValidNodeName reports whether s can name a node: 1–MaxNameBytes bytes of
// a DNS subdomain (RFC 1123), as Kubernetes node names are, with upper case
// allowed for standalone hosts' names. Every dot-separated label is
// non-empty, starts and ends with a letter or digit, and holds only
// letters, digits and hyphens. Wildcards and empty names cannot.
func ValidNodeName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameBytes {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if !alnum(s[i]) && s[i] != '-' {
				return false
			}
			continue
		}
		// s[start:i] is one label.
		if i == start || !alnum(s[start]) || !alnum(s[i-1]) {
			return false
		}
		start = i + 1
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
