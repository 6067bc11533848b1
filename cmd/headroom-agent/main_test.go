package main

import "testing"

// TestBadConfigurationExitsTwo checks that bad flags and bad environment
// values stop the agent before it starts, with exit status 2.
func TestBadConfigurationExitsTwo(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"unknown backend", []string{"--gpu-backend=rocm"}, nil},
		{"interval below minimum", []string{"--sample-interval=10ms"}, nil},
		{"bad address", []string{"--listen-address=nowhere"}, nil},
		{"unknown flag", []string{"--no-such-flag"}, nil},
		{"bad environment value", nil, map[string]string{"HEADROOM_SAMPLE_INTERVAL": "often"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if code := run(tt.args); code != 2 {
				t.Errorf("exit status = %d, want 2", code)
			}
		})
	}
}

// TestVersionFlag: --version answers and exits 0 before any validation,
// whatever else is set; HEADROOM_VERSION in the environment does not make
// the agent print and exit (that case would start the agent: it is covered
// in internal/envflag instead).
func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"--version", "--gpu-backend=rocm"}} {
		t.Run(args[len(args)-1], func(t *testing.T) {
			if code := run(args); code != 0 {
				t.Errorf("run(%q) = %d, want 0", args, code)
			}
		})
	}
}
