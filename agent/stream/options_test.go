package stream

import (
	"strings"
	"testing"
)

func TestOptionsValidateInsecure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, addresses, want string
	}{
		{"IPv4 loopback", "127.0.0.1:9004", ""},
		{"IPv6 loopback", "[::1]:9004", ""},
		{"several loopback", "127.0.0.1:9004, 127.0.0.2:9004", ""},
		// A name resolves through /etc/hosts and DNS, which may point
		// anywhere: plaintext reports must not leave the machine.
		{"localhost by name", "localhost:9004", "loopback IP literals"},
		{"a service name", "picker.headroom:9004", "loopback IP literals"},
		{"one of two off loopback", "127.0.0.1:9004,10.0.0.1:9004", "loopback IP literals"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			o.Addresses, o.Insecure = tc.addresses, true
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
