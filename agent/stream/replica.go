package stream

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/keepalive"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// healthyStream is how long a stream must have lasted for the next failure
// to start the backoff from the beginning again.
const healthyStream = 30 * time.Second

// replica is the stream to one picker replica.
type replica struct {
	s          *Streamer
	addr, host string
	conn       *grpc.ClientConn
	client     telemetryv1.TelemetryServiceClient
	backoff    backoff.Config
	ctx        context.Context
	cancel     context.CancelFunc
	wakeCh     chan struct{}
}

func (s *Streamer) newReplica(ctx context.Context, addr, host string) (*replica, error) {
	bo := backoff.DefaultConfig
	bo.BaseDelay = 250 * time.Millisecond
	bo.MaxDelay = s.opts.MaxBackoff
	opts := append(slices.Clone(s.dialOpts(host)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}),
		// Find a picker that vanished without closing (power loss, a
		// partition) in seconds rather than TCP's quarter of an hour.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}))
	conn, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	return &replica{
		s: s, addr: addr, host: host, conn: conn, backoff: bo,
		client: telemetryv1.NewTelemetryServiceClient(conn),
		ctx:    rctx, cancel: cancel, wakeCh: make(chan struct{}, 1),
	}, nil
}

func (r *replica) wake() {
	select {
	case r.wakeCh <- struct{}{}:
	default:
	}
}

func (r *replica) stop() { r.cancel() }

// fromAny reports whether the replica was resolved from one of targets.
func (r *replica) fromAny(targets []Target) bool {
	return slices.ContainsFunc(targets, func(t Target) bool { return t.Host == r.host })
}

// run keeps a stream open until the replica is stopped, backing off with
// jitter between failed attempts. Its series are dropped when it ends.
func (r *replica) run() {
	defer r.conn.Close()
	defer r.s.metrics.forget(r.addr)
	m := r.s.metrics
	attempt := 0
	for r.ctx.Err() == nil {
		acked, err := r.session()
		if r.ctx.Err() != nil {
			return
		}
		m.setConnected(r.addr, false)
		m.streamErrors.WithLabelValues(r.addr).Inc()
		r.s.resolveSoon() // a replica that went away may have a new address
		if !acked.IsZero() && time.Since(acked) > healthyStream {
			attempt = 0
		}
		if attempt == 0 {
			r.s.logger.Warn("picker stream failed; reconnecting", "picker", r.addr, "err", err)
		} else {
			r.s.logger.Debug("picker stream attempt failed", "picker", r.addr, "attempt", attempt, "err", err)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(delay(r.backoff, attempt)):
		}
		attempt++
	}
}

// session runs one stream: it sends the newest report at once and then
// every newer one, until the stream fails or the replica stops. It returns
// when the picker acknowledged the stream (zero: it never did). The RPC
// fails fast when the connection cannot be made (TLS or dial errors show
// up as the stream's error, logged and counted), and the receive goroutine
// has ended when it returns.
func (r *replica) session() (acked time.Time, err error) {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	st, err := r.client.Stream(ctx)
	if err != nil {
		return time.Time{}, err
	}
	recvErr := make(chan error, 1)
	ackedAt := make(chan time.Time, 1)
	go func() {
		for first := true; ; first = false {
			ack, err := st.Recv()
			if err != nil {
				recvErr <- err
				cancel()
				return
			}
			if first && r.ctx.Err() == nil {
				ackedAt <- time.Now()
				r.s.metrics.setConnected(r.addr, true)
				r.s.logger.Info("picker accepted the report stream", "picker", r.addr, "replica", ack.GetPicker())
			}
		}
	}()
	err = r.sendLoop(ctx, st, recvErr)
	cancel()
	if e := <-recvErr; err == nil || errors.Is(err, context.Canceled) {
		err = e
	}
	select {
	case acked = <-ackedAt:
	default:
	}
	return acked, err
}

// sendLoop sends the newest report whenever there is a newer one. It ends
// with nil when the stream's context ends, or with a send error.
func (r *replica) sendLoop(ctx context.Context, st grpc.BidiStreamingClient[telemetryv1.NodeReport, telemetryv1.StreamAck], recvErr <-chan error) error {
	var sent *outgoing
	m := r.s.metrics
	for {
		if o := r.s.latest.Load(); o != nil && o != sent {
			if err := st.SendMsg(o.message(st)); err != nil {
				if errors.Is(err, io.EOF) { // the picker ended the stream: its status comes from Recv
					return nil
				}
				return err
			}
			sent = o
			m.sent.WithLabelValues(r.addr).Inc()
			m.bytes.WithLabelValues(r.addr).Add(float64(o.size))
		}
		select {
		case <-r.wakeCh:
		case <-ctx.Done():
			return nil
		}
	}
}

// delay is gRPC's exponential backoff with jitter for the attempt'th
// retry; the first retry is drawn from the whole base interval, so agents
// that lost the same picker at once do not come back at once.
func delay(c backoff.Config, attempt int) time.Duration {
	if attempt == 0 {
		return time.Duration(rand.Int64N(int64(c.BaseDelay) + 1))
	}
	d := float64(c.BaseDelay)
	for i := 0; i < attempt && d < float64(c.MaxDelay); i++ {
		d *= c.Multiplier
	}
	d = min(d, float64(c.MaxDelay))
	d *= 1 + c.Jitter*(rand.Float64()*2-1)
	return time.Duration(max(d, 0))
}
