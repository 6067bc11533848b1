// Package servingcert keeps a TLS server's certificate (and, optionally,
// the CA its clients' certificates must chain to) current without a
// restart: read from PEM files and read again when they change on disk
// (a Kubernetes Secret volume swaps them under a symlink), or generated
// self-signed at start, as the GIE reference endpoint picker does when it
// is given no certificate, and renewed before it expires.
//
// Handshakes never touch the disk: they read the current pair from an
// atomic pointer that a polling loop (Run) replaces.
package servingcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Source is the current serving certificate and client CAs.
type Source struct {
	certFile, keyFile, caFile string
	// hosts names the self-signed certificate; nil for files.
	hosts  []string
	logger *slog.Logger
	now    func() time.Time

	cert      atomic.Pointer[tls.Certificate]
	clientCAs atomic.Pointer[x509.CertPool]

	// Only Run touches these.
	certPEM, keyPEM, caPEM []byte
	failing                bool

	reloads, failures atomic.Uint64
}

// FromFiles loads a PEM certificate and key, and the PEM CA bundle that
// client certificates must chain to when caFile is not empty. It fails
// when any of them cannot be read or parsed.
func FromFiles(certFile, keyFile, caFile string, logger *slog.Logger) (*Source, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("servingcert: a certificate and a key file are both needed")
	}
	s := &Source{certFile: certFile, keyFile: keyFile, caFile: caFile, logger: orDiscard(logger), now: time.Now}
	certPEM, keyPEM, caPEM, err := s.read()
	if err != nil {
		return nil, err
	}
	if err := s.install(certPEM, keyPEM, caPEM); err != nil {
		return nil, err
	}
	return s, nil
}

// SelfSigned generates a self-signed certificate for hosts (DNS names or
// IP literals), valid for a year; Run renews it when two thirds of that
// have passed. caFile, when not empty, is the client CA bundle (read
// again when it changes).
func SelfSigned(hosts []string, caFile string, logger *slog.Logger) (*Source, error) {
	s := &Source{hosts: append([]string(nil), hosts...), caFile: caFile, logger: orDiscard(logger), now: time.Now}
	c, err := selfSigned(s.hosts, s.now(), selfSignedLifetime)
	if err != nil {
		return nil, err
	}
	s.cert.Store(&c)
	if caFile != "" {
		caPEM, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("servingcert: client CA: %w", err)
		}
		pool, err := parseCAs(caFile, caPEM)
		if err != nil {
			return nil, err
		}
		s.clientCAs.Store(pool)
		s.caPEM = caPEM
	}
	return s, nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Certificate is the current serving certificate.
func (s *Source) Certificate() *tls.Certificate { return s.cert.Load() }

// Reloads and Failures count the changes taken and the reads or parses
// that failed (the previous certificate stayed).
func (s *Source) Reloads() uint64  { return s.reloads.Load() }
func (s *Source) Failures() uint64 { return s.failures.Load() }

// ServerConfig returns a TLS configuration that serves the current
// certificate on every handshake and, with a client CA, requires and
// verifies client certificates against the current bundle. TLS 1.2 is
// the floor: Envoy's upstream TLS offers at most 1.2 unless configured
// otherwise, and a gateway must be able to reach the picker.
func (s *Source) ServerConfig() *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
		c.Certificates = []tls.Certificate{*s.cert.Load()}
		if pool := s.clientCAs.Load(); pool != nil {
			c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		return c, nil
	}
	return base
}

// Run checks the files every interval until ctx ends and installs what
// changed once it parses (a half-written rotation is retried on the next
// tick, the old certificate serving meanwhile); it renews a self-signed
// certificate when two thirds of its life have passed.
func (s *Source) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Check()
		}
	}
}

// Check is one tick of Run: it reloads what changed, or renews.
func (s *Source) Check() {
	if s.certFile == "" {
		s.renewSelfSigned()
		s.checkCA()
		return
	}
	certPEM, keyPEM, caPEM, err := s.read()
	if err == nil && bytes.Equal(certPEM, s.certPEM) && bytes.Equal(keyPEM, s.keyPEM) && bytes.Equal(caPEM, s.caPEM) {
		s.failing = false
		return
	}
	if err == nil {
		err = s.install(certPEM, keyPEM, caPEM)
	}
	s.noteResult(err, "certificate", s.certFile)
}

func (s *Source) checkCA() {
	if s.caFile == "" {
		return
	}
	caPEM, err := os.ReadFile(s.caFile)
	if err == nil && bytes.Equal(caPEM, s.caPEM) {
		s.failing = false
		return
	}
	if err == nil {
		var pool *x509.CertPool
		if pool, err = parseCAs(s.caFile, caPEM); err == nil {
			s.clientCAs.Store(pool)
			s.caPEM = caPEM
		}
	}
	s.noteResult(err, "client CA", s.caFile)
}

// noteResult counts a reload or a failure, logging a failure once until
// the files change again or work.
func (s *Source) noteResult(err error, what, file string) {
	if err == nil {
		s.reloads.Add(1)
		s.failing = false
		s.logger.Info("serving "+what+" reloaded", "file", file)
		return
	}
	s.failures.Add(1)
	if !s.failing {
		s.logger.Warn("serving "+what+" not reloaded; the previous one stays", "file", file, "err", err)
	}
	s.failing = true
}

func (s *Source) read() (certPEM, keyPEM, caPEM []byte, err error) {
	if certPEM, err = os.ReadFile(s.certFile); err != nil {
		return nil, nil, nil, fmt.Errorf("servingcert: certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(s.keyFile); err != nil {
		return nil, nil, nil, fmt.Errorf("servingcert: key: %w", err)
	}
	if s.caFile != "" {
		if caPEM, err = os.ReadFile(s.caFile); err != nil {
			return nil, nil, nil, fmt.Errorf("servingcert: client CA: %w", err)
		}
	}
	return certPEM, keyPEM, caPEM, nil
}

// install parses the PEM and, when all of it is good, makes it current.
func (s *Source) install(certPEM, keyPEM, caPEM []byte) error {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("servingcert: %s and %s: %w", s.certFile, s.keyFile, err)
	}
	var pool *x509.CertPool
	if s.caFile != "" {
		if pool, err = parseCAs(s.caFile, caPEM); err != nil {
			return err
		}
	}
	s.cert.Store(&c)
	if pool != nil {
		s.clientCAs.Store(pool)
	}
	s.certPEM, s.keyPEM, s.caPEM = certPEM, keyPEM, caPEM
	return nil
}

func parseCAs(file string, pemBytes []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("servingcert: client CA %s: no PEM certificate", file)
	}
	return pool, nil
}
