package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testpki"
)

// handshake runs one TLS handshake over a pipe: the server side with cfg,
// the client side as a gateway that verifies nothing (Istio's
// insecureSkipVerify, Envoy Gateway's empty validation context) and
// offers at most TLS 1.2 (Envoy's upstream default), presenting client
// when it is not nil. It returns the certificate the server presented.
func handshake(t *testing.T, cfg *tls.Config, client *tls.Certificate) (*x509.Certificate, tls.ConnectionState, error) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srvErr := make(chan error, 1)
	go func() {
		s := tls.Server(b, cfg)
		err := s.Handshake()
		if err == nil {
			// A TLS 1.3 server learns of a refused client certificate
			// only here; read once so the client sees the alert.
			_, _ = s.Write([]byte{0})
		}
		srvErr <- err
		_ = b.Close()
	}()
	ccfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if client != nil {
		ccfg.Certificates = []tls.Certificate{*client}
	}
	c := tls.Client(a, ccfg)
	err := c.Handshake()
	if err == nil {
		_, err = c.Read(make([]byte, 1))
	}
	if serr := <-srvErr; err == nil {
		err = serr
	}
	st := c.ConnectionState()
	if err != nil || len(st.PeerCertificates) == 0 {
		return nil, st, err
	}
	return st.PeerCertificates[0], st, nil
}

// writeAtomically replaces path as a Secret volume update would: a new
// file renamed over the old one.
func writeAtomically(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestFromFilesReloadsOnChange(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test")
	certFile, keyFile := testpki.WriteFiles(t, dir, "first", ca.Server(t, "picker-a"))
	s, err := FromFiles(certFile, keyFile, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.ServerConfig()
	got, st, err := handshake(t, cfg, nil)
	if err != nil || got.Subject.CommonName != "picker-a" {
		t.Fatalf("first handshake: %v, %v", got, err)
	}
	if st.Version != tls.VersionTLS12 || st.NegotiatedProtocol != "h2" {
		t.Errorf("version %x, ALPN %q: want TLS 1.2 and h2 for a gateway capped at 1.2", st.Version, st.NegotiatedProtocol)
	}

	s.Check()
	if s.Reloads() != 0 {
		t.Errorf("reloaded %d times without a change", s.Reloads())
	}

	// A half-done rotation: the new certificate, the old key.
	newCert, newKey := testpki.WriteFiles(t, dir, "second", ca.Server(t, "picker-b"))
	certPEM, _ := os.ReadFile(newCert)
	keyPEM, _ := os.ReadFile(newKey)
	writeAtomically(t, certFile, certPEM)
	s.Check()
	if s.Failures() != 1 || s.Reloads() != 0 {
		t.Errorf("mismatched pair: %d failures, %d reloads; want 1, 0", s.Failures(), s.Reloads())
	}
	if got, _, err := handshake(t, cfg, nil); err != nil || got.Subject.CommonName != "picker-a" {
		t.Fatalf("during the rotation the old certificate must serve: %v, %v", got, err)
	}

	writeAtomically(t, keyFile, keyPEM)
	s.Check()
	if s.Reloads() != 1 {
		t.Errorf("reloads %d after the key arrived, want 1", s.Reloads())
	}
	if got, _, err := handshake(t, cfg, nil); err != nil || got.Subject.CommonName != "picker-b" {
		t.Fatalf("after the rotation: %v, %v", got, err)
	}
}

func TestRunPicksUpRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test")
	certFile, keyFile := testpki.WriteFiles(t, dir, "tls", ca.Server(t, "old"))
	s, err := FromFiles(certFile, keyFile, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	// Kubernetes swaps a Secret volume's ..data symlink: write the new pair
	// elsewhere and move it into place.
	c2, k2 := testpki.WriteFiles(t, t.TempDir(), "tls", ca.Server(t, "new"))
	for _, f := range [][2]string{{c2, certFile}, {k2, keyFile}} {
		b, _ := os.ReadFile(f[0])
		writeAtomically(t, f[1], b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for s.Certificate().Leaf.Subject.CommonName != "new" {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was never picked up")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFromFilesErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test")
	certFile, keyFile := testpki.WriteFiles(t, dir, "ok", ca.Server(t, "x"))
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name                string
		cert, key, ca, want string
	}{
		{name: "no key", cert: certFile, want: "both needed"},
		{name: "missing cert", cert: filepath.Join(dir, "nope"), key: keyFile, want: "certificate"},
		{name: "garbage cert", cert: garbage, key: keyFile, want: "garbage.pem"},
		{name: "garbage CA", cert: certFile, key: keyFile, ca: garbage, want: "no PEM certificate"},
		{name: "missing CA", cert: certFile, key: keyFile, ca: filepath.Join(dir, "nope"), want: "client CA"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := FromFiles(tt.cert, tt.key, tt.ca, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("FromFiles: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, other := testpki.NewCA(t, "gateways"), testpki.NewCA(t, "someone else")
	caFile := ca.WriteCA(t, dir)
	certFile, keyFile := testpki.WriteFiles(t, dir, "tls", ca.Server(t, "picker"))
	fromFiles, err := FromFiles(certFile, keyFile, caFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	self, err := SelfSigned([]string{"picker"}, caFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, stranger := ca.Client(t, "gateway"), other.Client(t, "gateway")
	for name, s := range map[string]*Source{"from files": fromFiles, "self-signed": self} {
		t.Run(name, func(t *testing.T) { // not parallel: the bundle changes below
			cfg := s.ServerConfig()
			if _, _, err := handshake(t, cfg, &good); err != nil {
				t.Errorf("client signed by the CA refused: %v", err)
			}
			if _, _, err := handshake(t, cfg, nil); err == nil {
				t.Error("client without a certificate accepted")
			}
			if _, _, err := handshake(t, cfg, &stranger); err == nil {
				t.Error("client signed by another CA accepted")
			}
		})
	}

	// The CA bundle rotates: the other CA is trusted from the next check.
	writeAtomically(t, caFile, other.PEM)
	fromFiles.Check()
	self.Check()
	for name, s := range map[string]*Source{"from files": fromFiles, "self-signed": self} {
		if _, _, err := handshake(t, s.ServerConfig(), &stranger); err != nil {
			t.Errorf("%s: client of the new CA refused after the bundle changed: %v", name, err)
		}
	}
}

func TestSelfSigned(t *testing.T) {
	t.Parallel()
	s, err := SelfSigned([]string{"picker-0", "127.0.0.1"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	got, st, err := handshake(t, s.ServerConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.NegotiatedProtocol != "h2" || got.Subject.CommonName != "picker-0" || len(got.IPAddresses) != 1 || !bytes.Equal(got.RawIssuer, got.RawSubject) {
		t.Errorf("certificate %v (ALPN %q): want self-signed for picker-0 and 127.0.0.1", got.Subject, st.NegotiatedProtocol)
	}
	if life := got.NotAfter.Sub(got.NotBefore); life < 300*24*time.Hour {
		t.Errorf("valid for %s only", life)
	}

	s.Check()
	if s.Certificate().Leaf.SerialNumber.Cmp(got.SerialNumber) != 0 {
		t.Fatal("renewed a fresh certificate")
	}
	s.now = func() time.Time { return got.NotBefore.Add(got.NotAfter.Sub(got.NotBefore) * 3 / 4) }
	s.Check()
	renewed := s.Certificate().Leaf
	if renewed.SerialNumber.Cmp(got.SerialNumber) == 0 || !renewed.NotAfter.After(got.NotAfter) || s.Reloads() != 1 {
		t.Errorf("past two thirds of its life the certificate was not renewed (reloads %d)", s.Reloads())
	}
}
