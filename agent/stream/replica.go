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
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: 5 * time.Second}))
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
// jitter between failed attempts.
func (r *replica) run() {
	defer r.conn.Close()
	m := r.s.metrics
	attempt := 0
	for r.ctx.Err() == nil {
		start := time.Now()
		err := r.session()
		m.setConnected(r.addr, false)
		if r.ctx.Err() != nil {
			return
		}
		m.streamErrors.WithLabelValues(r.addr).Inc()
		if time.Since(start) > healthyStream {
			attempt = 0
		}
		if attempt == 0 {
			r.s.logger.Warn("picker stream ended; reconnecting", "picker", r.addr, "err", err)
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
// every newer one, until the stream fails or the replica stops.
func (r *replica) session() error {
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	st, err := r.client.Stream(ctx, grpc.WaitForReady(true))
	if err != nil {
		return err
	}
	recvErr := make(chan error, 1)
	go func() {
		for first := true; ; first = false {
			ack, err := st.Recv()
			if err != nil {
				recvErr <- err
				cancel()
				return
			}
			if first {
				r.s.metrics.setConnected(r.addr, true)
				r.s.logger.Info("picker accepted the report stream", "picker", r.addr, "replica", ack.GetPicker())
			}
		}
	}()
	var sent *outgoing
	m := r.s.metrics
	for {
		if o := r.s.latest.Load(); o != nil && o != sent {
			if err := st.Send(o.report); err != nil {
				if errors.Is(err, io.EOF) { // the picker ended the stream: its status comes from Recv
					return <-recvErr
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
			select {
			case err := <-recvErr:
				return err
			default:
				return ctx.Err()
			}
		}
	}
}

// delay is gRPC's exponential backoff with jitter for the attempt'th retry.
func delay(c backoff.Config, attempt int) time.Duration {
	d := float64(c.BaseDelay)
	for i := 0; i < attempt && d < float64(c.MaxDelay); i++ {
		d *= c.Multiplier
	}
	d = min(d, float64(c.MaxDelay))
	d *= 1 + c.Jitter*(rand.Float64()*2-1)
	return time.Duration(max(d, 0))
}
