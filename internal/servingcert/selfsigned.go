package servingcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"time"
)

// selfSignedLifetime is how long a generated certificate is valid. It is
// renewed after two thirds of it, so a picker that runs for months never
// serves an expired one (gateways that verify nothing would not mind, a
// client pinning it would).
const selfSignedLifetime = 365 * 24 * time.Hour

// selfSigned makes an ECDSA P-256 certificate for hosts, valid from an
// hour before now (clock skew) for lifetime. P-256 rather than the
// reference picker's RSA 4096: generated in microseconds, not seconds,
// and every gateway's TLS stack (Envoy's BoringSSL included) takes it.
func selfSigned(hosts []string, now time.Time, lifetime time.Duration) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("servingcert: key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("servingcert: serial: %w", err)
	}
	cn := "headroom-picker"
	if len(hosts) > 0 {
		cn = hosts[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"headroom (self-signed)"}},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.Add(lifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("servingcert: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("servingcert: certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// renewSelfSigned replaces a generated certificate past two thirds of its
// life.
func (s *Source) renewSelfSigned() {
	cur := s.cert.Load()
	if cur == nil || cur.Leaf == nil {
		return
	}
	life := cur.Leaf.NotAfter.Sub(cur.Leaf.NotBefore)
	if s.now().Before(cur.Leaf.NotBefore.Add(life * 2 / 3)) {
		return
	}
	c, err := selfSigned(s.hosts, s.now(), selfSignedLifetime)
	if err == nil {
		s.cert.Store(&c)
	}
	s.noteResult(err, "self-signed certificate", "")
}
