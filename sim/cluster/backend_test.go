//go:build cgo

package cluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/sim/modelsim"
)

// fakeBackend starts in-process modelsim servers as if they were another
// simulator's processes: the cluster only sees the address and the stop
// function.
type fakeBackend struct {
	mu      sync.Mutex
	started []BackendServer
}

func (b *fakeBackend) Name() string { return "fake" }

func (b *fakeBackend) Check(class string) error {
	if class != "fast" {
		return errors.New("fake: only class fast")
	}
	return nil
}

func (b *fakeBackend) Capacity(string, float64, float64) float64 { return 3 }

func (b *fakeBackend) Start(ctx context.Context, s BackendServer) (func(), error) {
	p, _ := modelsim.LookupProfile("h100")
	ms, err := modelsim.New(modelsim.Options{Name: s.Name, Model: s.Model, Profile: p})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: ms.Handler(), ReadHeaderTimeout: time.Second}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() { _ = srv.Serve(ln); done <- struct{}{} }()
	go func() { _ = ms.Run(sctx); done <- struct{}{} }()
	b.mu.Lock()
	b.started = append(b.started, s)
	b.mu.Unlock()
	return func() { cancel(); _ = srv.Close(); <-done; <-done }, nil
}

// TestBackendServersShareAPort starts a pool through a Backend: every
// server on its own loopback IP and one shared port, the backend's class
// and capacity in use, the node's LoRAs passed on, and the agent reading
// the servers it did not start itself.
func TestBackendServersShareAPort(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{}
	o := DefaultOptions()
	o.Nodes = []NodeSpec{{System: "dgxh100", Server: "fast", GPUs: 2, LoRAs: []string{"sql"}}, {System: "dgxa100", Server: "fast", GPUs: 1}}
	o.Policy, o.Backend = PolicyRoundRobin, b
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eps := c.Endpoints()
	if len(eps) != 3 || len(b.started) != 3 {
		t.Fatalf("endpoints %v, backend started %d", eps, len(b.started))
	}
	_, port, _ := net.SplitHostPort(eps[0])
	for i, want := range []string{"127.0.1.10:", "127.0.1.11:", "127.0.2.10:"} {
		if !strings.HasPrefix(eps[i], want) || !strings.HasSuffix(eps[i], ":"+port) {
			t.Errorf("endpoint %d is %s, want %s%s", i, eps[i], want, port)
		}
		if b.started[i].Addr != eps[i] || b.started[i].Class != "fast" {
			t.Errorf("backend server %d: %+v", i, b.started[i])
		}
	}
	if got := b.started[0].LoRAs; len(got) != 1 || got[0] != "sql" {
		t.Errorf("node 0's servers got LoRAs %v", got)
	}
	if got := c.Capacity(200, 100); got != 9 {
		t.Errorf("capacity %v, want 3 servers × 3", got)
	}
	if c.Servers()[0].Class != "fast" || c.Servers()[0].Server != nil {
		t.Errorf("server 0: class %q, in-process simulator %v", c.Servers()[0].Class, c.Servers()[0].Server)
	}
	deadline := time.Now().Add(20 * time.Second)
	for servedPods(c.Nodes[0]) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the agent never read the backend's servers")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSharedPortWithModelsim(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Nodes, o.Policy, o.SharedPort = []NodeSpec{{System: "dgxh100", Server: "h100", GPUs: 3}}, PolicyRoundRobin, true
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ports := map[string]bool{}
	for _, ep := range c.Endpoints() {
		_, p, _ := net.SplitHostPort(ep)
		ports[p] = true
	}
	if len(ports) != 1 || len(c.Endpoints()) != 3 {
		t.Errorf("endpoints %v: want three sharing one port", c.Endpoints())
	}
}

func TestValidateBackendAndEPP(t *testing.T) {
	t.Parallel()
	for name, bad := range map[string]func(*Options){
		"class the backend lacks": func(o *Options) {
			o.Backend, o.Nodes = &fakeBackend{}, []NodeSpec{{System: "dgxh100", Server: "h100"}}
		},
		"epp without a starter": func(o *Options) { o.Policy = PolicyEPP },
	} {
		t.Run(name, func(t *testing.T) {
			o := DefaultOptions()
			bad(&o)
			if err := o.Validate(); err == nil {
				t.Errorf("%+v validated", o)
			}
		})
	}
}
