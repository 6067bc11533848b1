package certreload

import (
	"crypto/tls"
	"os"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	"github.com/headroom-dev/headroom/internal/testpki"
)

// counted returns a reloader over dir's files whose loads are counted.
func counted(t *testing.T, certFile, keyFile string) (*Reloader, *testutil.Clock, *int) {
	t.Helper()
	r, err := New(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := testutil.NewClock(time.Unix(1_800_000_000, 0))
	loads := new(int)
	r.now, r.checked = c.Now, c.Now()
	r.load = func(cf, kf string) (tls.Certificate, error) { *loads++; return tls.LoadX509KeyPair(cf, kf) }
	return r, c, loads
}

func serialOf(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	if c == nil || c.Leaf == nil {
		t.Fatal("no certificate")
	}
	return c.Leaf.SerialNumber.String()
}

func TestLoadsOnceAndReloadsOnChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "serving")
	certFile, keyFile := testpki.WriteFiles(t, dir, "picker", ca.Server(t, "127.0.0.1"))
	r, c, loads := counted(t, certFile, keyFile)
	first, _ := r.GetCertificate(nil)
	for range 1000 {
		c.Add(10 * time.Millisecond) // ten seconds of handshakes
		if got, err := r.GetCertificate(nil); err != nil || got != first {
			t.Fatalf("handshake got %v, %v; want the loaded pair", got, err)
		}
	}
	if *loads != 0 {
		t.Fatalf("%d loads for unchanged files, want none", *loads)
	}

	// A rotation: a new pair written over the files.
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	testpki.WriteFiles(t, dir, "picker", ca.Server(t, "127.0.0.1"))
	c.Add(DefaultCheckEvery)
	rotated, _ := r.GetCertificate(nil)
	if *loads != 1 || serialOf(t, rotated) == serialOf(t, first) {
		t.Fatalf("after a rotation: %d loads, serial %s (was %s)", *loads, serialOf(t, rotated), serialOf(t, first))
	}

	// A half-written pair, then none at all: the last good one stays.
	time.Sleep(10 * time.Millisecond)
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Add(DefaultCheckEvery)
	if got, _ := r.GetCertificate(nil); got != rotated {
		t.Fatal("a key that does not load replaced the pair")
	}
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	c.Add(DefaultCheckEvery)
	if got, _ := r.GetCertificate(nil); got != rotated {
		t.Fatal("missing files replaced the pair")
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := New(dir+"/missing.crt", dir+"/missing.key", nil); err == nil {
		t.Fatal("missing files accepted")
	}
	certFile, _ := testpki.WriteFiles(t, dir, "a", testpki.NewCA(t, "x").Server(t, "h"))
	if _, err := New(certFile, certFile, nil); err == nil {
		t.Fatal("a certificate as its own key accepted")
	}
}
