package app

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testutil"

	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/internal/testpki"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

func discard() *slog.Logger { return testutil.Logger() }

// loopbackOptions are a picker's options with every listener on a free
// loopback port, one static endpoint, no drain delay, and a serving pair
// from ca written into dir.
func loopbackOptions(t *testing.T, mode, dir string, ca *testpki.CA) Options {
	t.Helper()
	o := DefaultOptions()
	o.Name, o.IngestAddress, o.MetricsAddress, o.Auth = "picker-0", "127.0.0.1:0", "127.0.0.1:0", mode
	o.ExtProcAddress, o.HealthAddress, o.Pool.Endpoints = "127.0.0.1:0", "127.0.0.1:0", "10.0.0.1:8000"
	o.DrainDelay, o.ShutdownGrace = 0, time.Second
	o.CertFile, o.KeyFile = testpki.WriteFiles(t, dir, "picker", ca.Server(t, "127.0.0.1"))
	return o
}

// TestMTLSPickerWithAgentStreamer runs the picker process as its main does
// (mTLS, files on disk) and the agent's real streamer against it.
func TestMTLSPickerWithAgentStreamer(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "headroom")
	caFile := ca.WriteCA(t, dir)
	o := loopbackOptions(t, AuthMTLS, dir, ca)
	o.ClientCAFile = caFile
	p, err := New(o, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	so := stream.DefaultOptions()
	so.Addresses, so.CAFile = p.IngestAddr().String(), caFile
	so.CertFile, so.KeyFile = testpki.WriteFiles(t, dir, "node-a", ca.Client(t, "node-a"))
	s, err := stream.New(so, discard())
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan struct{})
	go func() { s.Run(sctx); close(sdone) }()
	defer func() { scancel(); <-sdone }()
	s.Publish(&telemetryv1.NodeReport{Node: "node-a", AgentInstance: "x", Sequence: 1,
		SampleTimeUnixNano: uint64(time.Now().UnixNano()), IntervalNano: int64(time.Minute)})

	deadline := time.Now().Add(20 * time.Second)
	for {
		if v, ok := p.Store().Node("node-a"); ok && v.Connected && !v.Stale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node-a never reached the picker")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + p.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`headroom_picker_nodes{connected="true",state="fresh"} 1`,
		`headroom_picker_reports_received_total 1`,
		`headroom_build_info{goarch="`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"defaults need a certificate", func(*Options) {}, "needs --ingest.tls-cert-file"},
		{"insecure off loopback", func(o *Options) { o.Auth, o.IngestAddress = AuthInsecure, ":9004" }, "loopback"},
		{"insecure on localhost by name", func(o *Options) { o.Auth, o.IngestAddress = AuthInsecure, "localhost:9004" }, "loopback IP literal"},
		{"unknown auth", func(o *Options) { o.Auth = "none" }, "want token, mtls or insecure"},
		{"token without an allowlist", func(o *Options) { o.CertFile, o.KeyFile = "c", "k" }, "needs --auth.token.service-accounts"},
		{"mtls without CA", func(o *Options) { o.Auth, o.CertFile, o.KeyFile = AuthMTLS, "c", "k" }, "client-ca-file"},
		{"bad TTL", func(o *Options) { o.Auth, o.IngestAddress, o.TTLIntervals = AuthInsecure, "127.0.0.1:1", 0 }, "ttl-intervals"},
		{"insecure on loopback is fine", func(o *Options) { o.Auth, o.IngestAddress = AuthInsecure, "127.0.0.1:9004" }, ""},
		{"insecure on IPv6 loopback is fine", func(o *Options) { o.Auth, o.IngestAddress = AuthInsecure, "[::1]:9004" }, ""},
		{"no pool and no endpoints", func(o *Options) { o.Auth, o.IngestAddress, o.Pool.Endpoints = AuthInsecure, "127.0.0.1:9004", "" }, "--pool.name"},
		{"bad view refresh", func(o *Options) { o.Auth, o.IngestAddress, o.ViewRefresh = AuthInsecure, "127.0.0.1:9004", 0 }, "view.refresh-interval"},
		{"plaintext ext_proc off loopback", func(o *Options) {
			o.Auth, o.IngestAddress, o.ExtProcTLS.Insecure = AuthInsecure, "127.0.0.1:9004", true
		}, "--extproc.insecure listens only on loopback"},
		{"plaintext ext_proc on loopback is fine", func(o *Options) {
			o.Auth, o.IngestAddress, o.ExtProcAddress, o.ExtProcTLS.Insecure = AuthInsecure, "127.0.0.1:9004", "127.0.0.1:9002", true
		}, ""},
		{"plaintext ext_proc with a certificate", func(o *Options) {
			o.Auth, o.IngestAddress, o.ExtProcAddress, o.ExtProcTLS.Insecure, o.ExtProcTLS.CertFile, o.ExtProcTLS.KeyFile = AuthInsecure, "127.0.0.1:9004", "127.0.0.1:9002", true, "c", "k"
		}, "contradicts"},
		{"ext_proc certificate without key", func(o *Options) { o.Auth, o.IngestAddress, o.ExtProcTLS.CertFile = AuthInsecure, "127.0.0.1:9004", "c" }, "go together"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.Pool.Endpoints = "10.0.0.1:8000"
			tc.edit(&o)
			err := o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// The ingest's key pair is parsed once, not read from disk on every
// handshake (a flood of handshakes cost a file read and a parse each):
// with its files gone, handshakes still get the pair loaded at start.
func TestIngestKeyPairLoadedOnce(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "headroom")
	o := loopbackOptions(t, AuthMTLS, dir, ca)
	o.ClientCAFile = ca.WriteCA(t, dir)
	p, err := New(o, discard())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for _, f := range []string{o.CertFile, o.KeyFile} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{ca.Client(t, "node-a")}}
	for i := range 3 {
		conn, err := tls.Dial("tcp", p.IngestAddr().String(), cfg)
		if err != nil {
			t.Fatalf("handshake %d with the key pair's files gone: %v", i, err)
		}
		_ = conn.Close()
		time.Sleep(600 * time.Millisecond) // past the reloader's look at the files
	}
}
