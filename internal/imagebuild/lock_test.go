package imagebuild

import (
	"strings"
	"testing"
)

const sum = "ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf"

func TestParseLock(t *testing.T) {
	t.Parallel()
	good := "# comment\n\nlibc6 amd64 2.36-9+deb12u14 2759320 " + sum + " http://deb.debian.org/debian/pool/main/g/glibc/libc6.deb\n" +
		"ca-certificates all 20250419~deb12u2 160948 " + sum + " https://deb.debian.org/x.deb\n"
	for _, tt := range []struct {
		name, in, wantErr string
		wantN             int
	}{
		{"good", good, "", 2},
		{"short line", "libc6 amd64 1 2 " + sum, "5 fields", 0},
		{"bad size", "libc6 amd64 1 many " + sum + " http://x/y.deb", "size", 0},
		{"bad hash", "libc6 amd64 1 2 ABC http://x/y.deb", "sha256", 0},
		{"upper-case hash", "libc6 amd64 1 2 " + strings.ToUpper(sum) + " http://x/y.deb", "lower-case", 0},
		{"not http", "libc6 amd64 1 2 " + sum + " ftp://x/y.deb", "url", 0},
		{"every bad line reported", "a\nb\n", "line 2", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := ParseLock(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || len(l) != tt.wantN {
				t.Fatalf("got %d packages, %v; want %d", len(l), err, tt.wantN)
			}
		})
	}
}

func TestLockFind(t *testing.T) {
	t.Parallel()
	l := Lock{{Name: "libc6", Arch: "amd64", Version: "a"}, {Name: "libc6", Arch: "arm64", Version: "b"}, {Name: "ca-certificates", Arch: "all", Version: "c"}}
	for _, tt := range []struct{ name, arch, want string }{
		{"libc6", "arm64", "b"}, {"libc6", "amd64", "a"}, {"ca-certificates", "arm64", "c"}, {"libc6", "riscv64", ""},
	} {
		t.Run(tt.name+"/"+tt.arch, func(t *testing.T) {
			t.Parallel()
			p, err := l.Find(tt.name, tt.arch)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "make images-lock") {
					t.Errorf("err = %v, want a pointer to make images-lock", err)
				}
				return
			}
			if err != nil || p.Version != tt.want {
				t.Errorf("got %v %v, want version %s", p, err, tt.want)
			}
		})
	}
}
