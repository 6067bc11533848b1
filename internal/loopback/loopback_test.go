package loopback

import "testing"

func TestAddress(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9004": true, "localhost:1": true, "[::1]:9004": true, "127.0.0.2:1": true,
		":9004": false, "0.0.0.0:9004": false, "10.0.0.1:9004": false, "picker:9004": false, "127.0.0.1": false,
	} {
		if got := Address(addr); got != want {
			t.Errorf("Address(%q) = %v, want %v", addr, got, want)
		}
	}
}
