package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/headroom-dev/headroom/agent/report"
	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/snapshot"
)

// liveSource is a source that reads on a clock of its own, faster than the
// sampling one (the model-server source): the publisher sends a report
// after each of its rounds that changed something, with its newest
// readings laid over the latest snapshot's.
type liveSource interface {
	// Updated is signalled, without blocking, after a round that changed
	// a reading.
	Updated() <-chan struct{}
	// Newest returns a pod's newest reading from one round, or nil.
	Newest() func(*snapshot.Pod) *snapshot.ModelServer
}

// publisher builds a report after every snapshot and every round of a live
// source that changed something, and hands it to the streamer. Reports
// are built here, once, and shared by every picker replica's stream.
type publisher struct {
	latest   func() *snapshot.Snapshot
	live     liveSource // nil without one
	streamer *stream.Streamer
	instance string
	interval time.Duration
	sampled  chan struct{}
	seq      uint64
}

func newPublisher(latest func() *snapshot.Snapshot, sources []collector.Enabled, s *stream.Streamer, interval time.Duration) *publisher {
	p := &publisher{latest: latest, streamer: s, interval: interval, sampled: make(chan struct{}, 1), instance: instanceID()}
	for _, e := range sources {
		if l, ok := e.Source.(liveSource); ok {
			p.live = l
		}
	}
	return p
}

// notify is called after each snapshot is published; it never blocks.
func (p *publisher) notify() {
	select {
	case p.sampled <- struct{}{}:
	default:
	}
}

// run publishes until ctx ends.
func (p *publisher) run(ctx context.Context) {
	var updated <-chan struct{}
	var newer report.ModelServers
	if p.live != nil {
		updated = p.live.Updated()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.sampled:
		case <-updated:
		}
		s := p.latest()
		if s == nil {
			continue // no snapshot yet: the first sample will come
		}
		if p.live != nil {
			newer = p.live.Newest() // one round per report
		}
		p.seq++
		p.streamer.Publish(report.Build(s, newer, report.Meta{Instance: p.instance, Sequence: p.seq, Interval: p.interval}))
	}
}

// instanceID is random per agent start, so pickers order reports across
// restarts by sample time rather than by sequence.
func instanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
