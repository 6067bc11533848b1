//go:build cgo

package demo

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/headroom-dev/headroom/picker/app"
)

// demoPicker is one headroom-picker replica holding the demo node's
// reports: the agent streams to it over loopback in insecure mode.
type demoPicker struct {
	p    *app.Picker
	done chan error
}

func startPicker(ctx context.Context, endpoints string, logger *slog.Logger) (*demoPicker, error) {
	o := app.DefaultOptions()
	o.Name, o.Auth = "demo-picker-0", app.AuthInsecure
	o.IngestAddress, o.MetricsAddress = "127.0.0.1:0", "127.0.0.1:0"
	o.ExtProcAddress, o.HealthAddress = "127.0.0.1:0", "127.0.0.1:0"
	o.DrainDelay, o.ShutdownGrace = 0, time.Second
	o.Pool.Endpoints = endpoints
	p, err := app.New(o, logger.With("component", "picker"))
	if err != nil {
		return nil, err
	}
	d := &demoPicker{p: p, done: make(chan error, 1)}
	go func() { d.done <- p.Run(ctx) }()
	return d, nil
}

// status is one line on what the picker holds for node.
func (d *demoPicker) status(node string) string {
	v, ok := d.p.Store().Node(node)
	if !ok || v.Report == nil {
		return fmt.Sprintf("picker %s: no report from %s yet", d.p.IngestAddr(), node)
	}
	r := v.Report
	pods, fresh := len(r.GetPods()), "fresh"
	if v.Stale {
		fresh = "STALE"
	}
	age := time.Duration(0)
	if t := r.GetSampleTimeUnixNano(); t > 0 {
		age = v.Received.Sub(time.Unix(0, int64(t)))
	}
	return fmt.Sprintf("picker %s: report #%d from %s (%d GPUs, %d pods), %s, %s from sample to picker, received %s ago",
		d.p.IngestAddr(), r.GetSequence(), node, len(r.GetGpus()), pods, fresh,
		age.Round(10*time.Microsecond), v.Age.Round(time.Millisecond))
}
