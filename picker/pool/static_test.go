package pool

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func addresses(eps []Endpoint) []string {
	var out []string
	for _, e := range eps {
		out = append(out, e.Address())
	}
	return out
}

func TestParseEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr []string // every one must be in the error
		// wantNodes are the endpoints' nodes, in order (nil: none named)
		wantNodes []string
	}{
		{name: "one", in: "10.0.0.1:8000", want: []string{"10.0.0.1:8000"}},
		{name: "sorted numerically", in: "10.0.0.10:8000,10.0.0.9:8001,10.0.0.9:8000", want: []string{"10.0.0.9:8000", "10.0.0.9:8001", "10.0.0.10:8000"}},
		{name: "spaces", in: " 10.0.0.2:80 , 10.0.0.1:80 ", want: []string{"10.0.0.1:80", "10.0.0.2:80"}},
		{name: "ipv6 after ipv4", in: "[fd00::1]:8000,10.0.0.1:8000", want: []string{"10.0.0.1:8000", "[fd00::1]:8000"}},
		{name: "ipv4-mapped unmapped", in: "[::ffff:10.0.0.1]:80", want: []string{"10.0.0.1:80"}},
		{name: "empty", in: " ", wantErr: []string{"no endpoints given"}},
		{name: "hostname", in: "model-a:8000", wantErr: []string{`entry 1 "model-a:8000": not an IP literal`}},
		{name: "every bad entry listed", in: "10.0.0.1:8000,10.0.0.2,,10.0.0.3:0,0.0.0.0:80,10.0.0.1:8000,[fe80::1%eth0]:80,10.0.0.4:99999",
			wantErr: []string{
				`entry 2 "10.0.0.2": not an IP literal`, `entry 3 "": empty`, `entry 4 "10.0.0.3:0": port 0`,
				`entry 5 "0.0.0.0:80": unspecified address`, `entry 6 "10.0.0.1:8000": repeated`,
				`entry 7 "[fe80::1%eth0]:80": IPv6 zone`, `entry 8 "10.0.0.4:99999": not an IP literal`,
			}},
		{name: "ipv6 without brackets", in: "fd00::1:8000", wantErr: []string{"entry 1"}},
		{name: "nodes named", in: "10.0.0.2:8000@gpu-2,10.0.0.1:8000@gpu-1,10.0.0.1:8001@gpu-1,[fd00::1]:80@gpu-3",
			want: []string{"10.0.0.1:8000", "10.0.0.1:8001", "10.0.0.2:8000", "[fd00::1]:80"}, wantNodes: []string{"gpu-1", "gpu-1", "gpu-2", "gpu-3"}},
		{name: "bad nodes", in: "10.0.0.1:8000@,10.0.0.2:8000@*,10.0.0.3:8000@a@b,10.0.0.4:8000@node_1",
			wantErr: []string{`entry 1 "10.0.0.1:8000@": node ""`, `entry 2 "10.0.0.2:8000@*": node "*"`, `entry 3 "10.0.0.3:8000@a@b": node "a@b"`, `entry 4 "10.0.0.4:8000@node_1"`}},
		{name: "one IP on two nodes", in: "10.0.0.1:8000@gpu-1,10.0.0.1:8001@gpu-2", wantErr: []string{`entry 2 "10.0.0.1:8001@gpu-2": 10.0.0.1 is on node "gpu-1"`}},
		{name: "one IP named and unnamed", in: "10.0.0.1:8000@gpu-1,10.0.0.1:8001", wantErr: []string{`entry 2 "10.0.0.1:8001": 10.0.0.1 is on node "gpu-1"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			eps, err := ParseEndpoints(tt.in)
			if len(tt.wantErr) > 0 {
				if !errors.Is(err, ErrBadEndpoints) {
					t.Fatalf("err = %v, want ErrBadEndpoints", err)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v\nwant it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := addresses(eps); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			for i, e := range eps {
				node := ""
				if tt.wantNodes != nil {
					node = tt.wantNodes[i]
				}
				if !e.Ready || e.Name != "" || e.Node != node || e.UID != "" {
					t.Errorf("endpoint %+v: want ready, no pod, node %q", e, node)
				}
			}
		})
	}
}

func TestStatic(t *testing.T) {
	t.Parallel()
	s, err := NewStatic("10.0.0.2:8000,10.0.0.1:8000")
	if err != nil {
		t.Fatal(err)
	}
	if !s.Synced() {
		t.Error("static source not synced")
	}
	select {
	case <-s.Updated():
	default:
		t.Error("Updated not signalled for the initial list")
	}
	if got, want := addresses(s.Endpoints()), []string{"10.0.0.1:8000", "10.0.0.2:8000"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := NewStatic("nope"); !errors.Is(err, ErrBadEndpoints) {
		t.Errorf("NewStatic(nope) = %v, want ErrBadEndpoints", err)
	}
}
