//go:build cgo

package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/picker/app"
	"github.com/headroom-dev/headroom/sim/gateway"
)

// Picker is one headroom-picker replica.
type Picker struct {
	*app.Picker
	Name   string
	cancel context.CancelFunc
	done   chan error
}

func (c *Cluster) startPicker(ctx context.Context, i int) (*Picker, error) {
	o := app.DefaultOptions()
	o.Name, o.Auth = fmt.Sprintf("picker-%d", i), app.AuthInsecure
	o.IngestAddress, o.MetricsAddress = "127.0.0.1:0", "127.0.0.1:0"
	o.ExtProcAddress, o.HealthAddress = "127.0.0.1:0", "127.0.0.1:0"
	o.DrainDelay, o.ShutdownGrace = 0, time.Second
	o.Pool.Endpoints = strings.Join(c.nodeEndpoints(), ",")
	o.ScoringConfig = c.o.ScoringConfig
	o.Direct.Enabled = !c.o.NoDirectScrape
	p, err := app.New(o, c.log.With("picker", o.Name))
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	pk := &Picker{Picker: p, Name: o.Name, cancel: cancel, done: make(chan error, 1)}
	go func() { pk.done <- p.Run(pctx) }()
	return pk, nil
}

// nodeEndpoints lists every model server as ip:port@node, so the picker
// takes each one's telemetry only from its own node's agent, as it does
// with an InferencePool's pods.
func (c *Cluster) nodeEndpoints() []string {
	var eps []string
	for _, n := range c.Nodes {
		for _, s := range n.Servers {
			eps = append(eps, s.Addr+"@"+n.Name)
		}
	}
	return eps
}

// Stop stops the replica, as a pod deleted gracefully.
func (p *Picker) Stop() { p.cancel(); p.wait() }

func (p *Picker) wait() {
	if p.done != nil {
		<-p.done
		p.done = nil
	}
}

// ExternalPicker is a picker replica outside the process, by address.
type ExternalPicker struct{ Ingest, ExtProc, Metrics string }

func (c *Cluster) ingestAddresses() string {
	var addrs []string
	for _, p := range c.Pickers {
		addrs = append(addrs, p.IngestAddr().String())
	}
	for _, p := range c.external {
		addrs = append(addrs, p.Ingest)
	}
	return strings.Join(addrs, ",")
}

func (c *Cluster) startGateway(ctx context.Context) error {
	o := gateway.Options{Endpoints: c.Endpoints(), Logger: c.log.With("component", "gateway")}
	switch c.o.Policy {
	case PolicyHeadroom:
		// The pickers serve ext_proc over TLS with a self-signed
		// certificate, as in a cluster; the gateway does not verify it,
		// as GIE gateways do not.
		o.PickerTLS = gateway.InsecurePickerTLS()
		for _, p := range c.Pickers {
			o.Pickers = append(o.Pickers, p.ExtProcAddr().String())
		}
		for _, p := range c.external {
			o.Pickers = append(o.Pickers, p.ExtProc)
		}
	case PolicyEPP:
		o.Pickers = c.eppAddrs
	case PolicyRoundRobin:
		o.Policy = gateway.RoundRobin()
	case PolicyRandom:
		o.Policy = gateway.Random(c.o.Seed)
	case PolicyLeastRequest:
		o.Policy = gateway.LeastRequest(c.o.Seed)
	case PolicyQueueKV:
		q := gateway.NewQueueKV(gateway.QueueKVOptions{Endpoints: c.Endpoints(), Seed: c.o.Seed})
		polled := make(chan struct{})
		go func() { q.Run(ctx); close(polled) }()
		c.stopPoller = func() { <-polled }
		o.Policy = q
	}
	gw, err := gateway.New(o)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.o.GatewayAddress)
	if err != nil {
		_ = gw.Close()
		return err
	}
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c.Gateway, c.URL = gw, "http://"+ln.Addr().String()
	c.gwDo = func() error {
		err := srv.Close()
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	return nil
}

// startEPP starts the reference endpoint picker over the servers.
func (c *Cluster) startEPP(ctx context.Context) error {
	addrs, stop, err := c.o.EPP(ctx, c.Endpoints())
	if err != nil {
		return fmt.Errorf("reference endpoint picker: %w", err)
	}
	c.eppAddrs, c.stopEPP = addrs, stop
	return nil
}

// StartReady is Start, then WaitReady for at most timeout; a cluster
// that does not get ready is closed.
func StartReady(ctx context.Context, o Options, timeout time.Duration) (*Cluster, error) {
	c, err := Start(ctx, o)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := c.WaitReady(wctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// WaitReady waits until the gateway routes: for the headroom policy,
// until every picker replica holds a fresh report with model-server
// metrics from every node.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for {
		if c.ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) ready() bool {
	for _, p := range c.external {
		if freshNodes(p.Metrics) < len(c.Nodes) {
			return false
		}
	}
	for _, p := range c.Pickers {
		for _, n := range c.Nodes {
			v, ok := p.Store().Node(n.Name)
			if !ok || v.Stale || v.Report == nil || len(v.Report.GetPods()) < len(n.Servers) {
				return false
			}
			for _, pod := range v.Report.GetPods() {
				if pod.GetModelServer() == nil {
					return false
				}
			}
		}
	}
	return true
}

// freshNodes reads how many nodes a picker holds fresh reports from, off
// its /metrics; -1 when it cannot be read.
func freshNodes(metricsAddr string) int {
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var n float64
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "headroom_picker_nodes{") || !strings.Contains(line, `state="fresh"`) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			n += v
		}
	}
	return int(n)
}
