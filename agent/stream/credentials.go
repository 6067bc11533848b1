package stream

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// dialCredentials returns, per picker host name, the dial options that
// carry the agent's credentials.
func dialCredentials(o Options) (func(host string) []grpc.DialOption, error) {
	if o.Insecure {
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		return func(string) []grpc.DialOption { return opts }, nil
	}
	base := &tls.Config{MinVersion: tls.VersionTLS13}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read picker CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("picker CA %s: no PEM certificates", o.CAFile)
		}
		base.RootCAs = pool
	}
	if o.CertFile != "" {
		// Reloaded on each handshake so a rotated certificate is picked up.
		certFile, keyFile := o.CertFile, o.KeyFile
		if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		base.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("load client certificate: %w", err)
			}
			return &c, nil
		}
	}
	var extra []grpc.DialOption
	if o.TokenFile != "" {
		tok, err := tokenCredentials(o.TokenFile)
		if err != nil {
			return nil, err
		}
		extra = append(extra, grpc.WithPerRPCCredentials(tok))
	}
	return func(host string) []grpc.DialOption {
		cfg := base.Clone()
		cfg.ServerName = host
		if o.ServerName != "" {
			cfg.ServerName = o.ServerName
		}
		return append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}, extra...)
	}, nil
}
