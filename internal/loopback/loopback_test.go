package loopback

import "testing"

func TestAddress(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:9004": true, "[::1]:9004": true, "127.0.0.2:1": true, "[::ffff:127.0.0.1]:1": true,
		":9004": false, "0.0.0.0:9004": false, "10.0.0.1:9004": false, "picker:9004": false, "127.0.0.1": false,
		// A name is resolved by whatever answers DNS or /etc/hosts: only IP
		// literals prove the traffic stays on the machine.
		"localhost:1": false, "LOCALHOST:1": false, "localhost.:1": false, "127.0.0.1.nip.io:1": false,
		"[fe80::1%lo]:1": false,
	} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			if got := Address(addr); got != want {
				t.Errorf("Address(%q) = %v, want %v", addr, got, want)
			}
		})
	}
}

func TestHost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{"127.0.0.1": true, "::1": true, "localhost": false, "": false, "::": false} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			if got := Host(host); got != want {
				t.Errorf("Host(%q) = %v, want %v", host, got, want)
			}
		})
	}
}
