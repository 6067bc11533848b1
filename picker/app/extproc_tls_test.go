package app

import (
	"context"
	"crypto/tls"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/headroom-dev/headroom/internal/testpki"
)

// gatewayTLS is what a GIE gateway offers the picker: TLS it does not
// verify (Istio's DestinationRule insecureSkipVerify, Envoy Gateway's and
// kgateway's empty validation context), at most TLS 1.2 (Envoy's upstream
// default), ALPN h2.
func gatewayTLS(client *tls.Certificate) credentials.TransportCredentials {
	cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, NextProtos: []string{"h2"}}
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	return credentials.NewTLS(cfg)
}

// healthCheck asks addr's gRPC health service about service over creds.
func healthCheck(t *testing.T, addr, service string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return err
}

// startTestPicker runs a picker on loopback with insecure ingest and
// static endpoints, configured further by configure.
func startTestPicker(t *testing.T, configure func(*Options)) *Picker {
	t.Helper()
	o := DefaultOptions()
	o.Name, o.Auth = "picker-0", AuthInsecure
	o.IngestAddress, o.MetricsAddress, o.ExtProcAddress, o.HealthAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	o.Pool.Endpoints = "10.0.0.1:8000"
	o.DrainDelay, o.ShutdownGrace = 0, time.Second
	if configure != nil {
		configure(&o)
	}
	p, err := New(o, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return p
}

// TestExtProcTLSByDefault: with no TLS flag the ext_proc port speaks TLS
// (a self-signed certificate) to a gateway that does not verify it, and
// refuses plaintext, as the GIE reference picker does; the health port
// stays plaintext gRPC for the kubelet's probes.
func TestExtProcTLSByDefault(t *testing.T) {
	t.Parallel()
	p := startTestPicker(t, nil)
	if err := healthCheck(t, p.ExtProcAddr().String(), healthLiveness, gatewayTLS(nil)); err != nil {
		t.Errorf("TLS health check on the ext_proc port: %v", err)
	}
	if err := healthCheck(t, p.ExtProcAddr().String(), healthLiveness, insecure.NewCredentials()); err == nil {
		t.Error("the ext_proc port answered plaintext")
	}
	if err := healthCheck(t, p.HealthAddr().String(), healthLiveness, insecure.NewCredentials()); err != nil {
		t.Errorf("plaintext health check on the health port: %v", err)
	}
}

// TestExtProcTLSFromFiles: a certificate from files, re-read when it
// changes, and a client CA that every gateway connection must present a
// certificate of.
func TestExtProcTLSFromFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.NewCA(t, "gateways")
	certFile, keyFile := testpki.WriteFiles(t, dir, "extproc", ca.Server(t, "first"))
	p := startTestPicker(t, func(o *Options) {
		o.ExtProcTLS.CertFile, o.ExtProcTLS.KeyFile = certFile, keyFile
		o.ExtProcTLS.ClientCAFile = ca.WriteCA(t, dir)
		o.ExtProcTLS.ReloadInterval = 20 * time.Millisecond
	})
	addr := p.ExtProcAddr().String()
	gw := ca.Client(t, "gateway")
	if err := healthCheck(t, addr, healthLiveness, gatewayTLS(&gw)); err != nil {
		t.Fatalf("gateway with a client certificate: %v", err)
	}
	if err := healthCheck(t, addr, healthLiveness, gatewayTLS(nil)); err == nil {
		t.Error("a gateway without a client certificate was let in")
	}
	if got := servedName(t, addr, &gw); got != "first" {
		t.Fatalf("served certificate %q, want first", got)
	}

	c2, k2 := testpki.WriteFiles(t, t.TempDir(), "extproc", ca.Server(t, "second"))
	for _, f := range [][2]string{{c2, certFile}, {k2, keyFile}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1]+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f[1]+".new", f[1]); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for servedName(t, addr, &gw) != "second" {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not served without a restart")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// servedName is the common name of the certificate addr serves.
func servedName(t *testing.T, addr string, client *tls.Certificate) string {
	t.Helper()
	cfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, Certificates: []tls.Certificate{*client}}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}
