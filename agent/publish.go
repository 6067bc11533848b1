package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/headroom-dev/headroom/agent/report"
	"github.com/headroom-dev/headroom/agent/stream"
	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/collector/modelserver"
	"github.com/headroom-dev/headroom/snapshot"
)

// publisher builds a report after every snapshot and every model-server
// round that changed something, and hands it to the streamer. Reports are
// built here, once, and shared by every picker replica's stream.
type publisher struct {
	latest   func() *snapshot.Snapshot
	live     *modelserver.Source // nil without the model-server source
	streamer *stream.Streamer
	instance string
	interval time.Duration
	sampled  chan struct{}
	seq      uint64
}

func newPublisher(latest func() *snapshot.Snapshot, sources []collector.Enabled, s *stream.Streamer, interval time.Duration) *publisher {
	p := &publisher{latest: latest, streamer: s, interval: interval, sampled: make(chan struct{}, 1), instance: instanceID()}
	for _, e := range sources {
		if l, ok := e.Source.(*modelserver.Source); ok {
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
	var lookup report.ModelServers
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
			table := p.live.Latest() // one load per report: the table is immutable
			lookup = func(pod *snapshot.Pod) *snapshot.ModelServer { return table[modelserver.Key(pod)] }
		}
		p.seq++
		p.streamer.Publish(report.Build(s, lookup, report.Meta{Instance: p.instance, Sequence: p.seq, Interval: p.interval}))
	}
}

// instanceID is random per agent start, so pickers order reports across
// restarts by sample time rather than by sequence.
func instanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
