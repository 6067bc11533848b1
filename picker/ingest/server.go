// Package ingest is the picker's side of the telemetry stream: a gRPC
// server that authenticates each agent, checks that every report is for
// the node the agent proved it runs on, validates it, and keeps the newest
// report per node in a Store. A node whose report is older than a TTL
// (default three of its agent's intervals) is stale: its endpoints must not
// be routed by that report.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/headroom-dev/headroom/picker/auth"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// DefaultMaxReportBytes bounds one encoded report (a node of 8 GPUs with
// 100 processes each and 50 pods is about 30 KiB).
const DefaultMaxReportBytes = 4 << 20

// Server implements telemetryv1.TelemetryServiceServer.
type Server struct {
	telemetryv1.UnimplementedTelemetryServiceServer
	store   *Store
	authn   auth.Authenticator
	name    string
	logger  *slog.Logger
	metrics *Metrics
	now     func() time.Time
}

// NewServer returns an ingest server storing into store. name identifies
// this picker replica to the agents.
func NewServer(store *Store, authn auth.Authenticator, name string, logger *slog.Logger) *Server {
	return &Server{store: store, authn: authn, name: name, logger: logger, metrics: NewMetrics(store), now: time.Now}
}

// Metrics returns the server's Prometheus collector.
func (s *Server) Metrics() *Metrics { return s.metrics }

// Store returns the node store.
func (s *Server) Store() *Store { return s.store }

// GRPCOptions are the server options ingest needs: the report size limit
// and keepalives that match the agents'. Agents keep streams open for
// days and ping every 30 s when a stream is quiet; gRPC's default policy
// (no pings more often than every 5 minutes) would answer the fourth with
// GOAWAY "too_many_pings" and make every quiet agent
// reconnect. The server pings too, so an agent that vanished without
// closing (its node died) stops counting as connected within a minute.
func GRPCOptions(maxReportBytes int) []grpc.ServerOption {
	if maxReportBytes <= 0 {
		maxReportBytes = DefaultMaxReportBytes
	}
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxReportBytes),
		grpc.StaticStreamWindowSize(streamWindow),
		grpc.StaticConnWindowSize(connWindow),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
}

// maxFutureSkew is how far ahead of the picker's clock a report's sample
// time may be. Without a bound, one report stamped far in the future would
// make every later report of the node look older and be dropped.
const maxFutureSkew = 30 * time.Second

// Stream implements the TelemetryService. The stream is authenticated once;
// every report on it must be for the identity's node, and the stream may
// not change node. It ends when the credentials expire, so the agent
// reconnects with its rotated token or certificate.
func (s *Server) Stream(st grpc.BidiStreamingServer[telemetryv1.NodeReport, telemetryv1.StreamAck]) error {
	ctx := st.Context()
	id, err := s.authn.Authenticate(ctx)
	if err != nil {
		s.metrics.rejected.WithLabelValues("auth").Inc()
		return authStatus(err)
	}
	first, err := st.Recv()
	if err != nil {
		return recvStatus(err)
	}
	q := newQuarantineLog(s.logger, first.GetNode())
	if err := s.check(id, "", first, q); err != nil {
		return err
	}
	node := first.GetNode()
	detach := s.store.attach(node)
	defer detach()
	s.logger.Info("agent stream accepted", "node", node, "subject", id.Subject, "method", id.Method)
	s.accept(first)
	if err := st.Send(&telemetryv1.StreamAck{Node: node, Picker: s.name}); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.receive(st, id, node, q) }()
	var expired <-chan time.Time
	if !id.Expires.IsZero() {
		t := time.NewTimer(time.Until(id.Expires))
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-done:
		return err
	case <-expired:
		// Returning cancels the stream, which ends receive's Recv.
		s.logger.Info("agent credentials expired; closing its stream", "node", node, "subject", id.Subject)
		return status.Error(codes.Unauthenticated, "credentials expired: reconnect with fresh ones")
	}
}

// receive stores each report of the stream until it ends.
func (s *Server) receive(st grpc.BidiStreamingServer[telemetryv1.NodeReport, telemetryv1.StreamAck], id auth.Identity, node string, q *quarantineLog) error {
	for {
		r, err := st.Recv()
		if err != nil {
			if st.Context().Err() == nil {
				s.logger.Info("agent stream closed", "node", node, "err", err)
			}
			return recvStatus(err)
		}
		if err := s.check(id, node, r, q); err != nil {
			return err
		}
		s.accept(r)
	}
}

// check refuses a report that is malformed, for another node than the
// sender may speak for, or for another node than the stream's. Parts of
// an otherwise sound report that hold impossible values are dropped from
// it (Validate), counted and logged, and the rest is accepted.
func (s *Server) check(id auth.Identity, streamNode string, r *telemetryv1.NodeReport, q *quarantineLog) error {
	dropped, err := telemetryv1.Validate(r)
	if err != nil {
		s.metrics.rejected.WithLabelValues("invalid").Inc()
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if ahead := time.Unix(0, int64(r.GetSampleTimeUnixNano())).Sub(s.now()); ahead > maxFutureSkew {
		s.metrics.rejected.WithLabelValues("invalid").Inc()
		return status.Errorf(codes.InvalidArgument, "sample time is %s ahead of the picker's clock (at most %s allowed): check the node's clock", ahead.Round(time.Second), maxFutureSkew)
	}
	if !id.Allows(r.GetNode()) || (streamNode != "" && r.GetNode() != streamNode) {
		s.metrics.rejected.WithLabelValues("wrong_node").Inc()
		s.logger.Warn("refused a report for a node its sender may not speak for",
			"subject", id.Subject, "node", r.GetNode(), "allowed", id.Node)
		return status.Errorf(codes.PermissionDenied, "%s may not report for node %q", id.Subject, r.GetNode())
	}
	for _, d := range dropped {
		s.metrics.dropped.WithLabelValues(d.Section, d.Reason).Inc()
		q.note(d)
	}
	return nil
}

func (s *Server) accept(r *telemetryv1.NodeReport) {
	m := s.metrics
	m.received.Inc()
	m.bytes.Add(float64(proto.Size(r)))
	if !s.store.Put(r) {
		m.outOfOrder.Inc()
		return
	}
	if t := r.GetSampleTimeUnixNano(); t > 0 {
		m.freshness.Observe(max(s.now().Sub(time.Unix(0, int64(t))).Seconds(), 0))
	}
}

func authStatus(err error) error {
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, auth.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, auth.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	default:
		return status.Error(codes.Unavailable, fmt.Sprintf("cannot verify credentials: %v", err))
	}
}

// recvStatus passes gRPC statuses (and the clean end of a stream) through.
func recvStatus(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Canceled, err.Error())
}

// Static flow-control windows for the agents' streams. gRPC's default
// estimates each connection's bandwidth-delay product with a PING for
// data received while none is outstanding: on an agent's connection, which
// carries one small report per interval, that is a PING and its answer
// for almost every report (two syscalls and a wake-up on each side). A
// report is one message read at once, so a fixed window of a few reports
// loses nothing; it also bounds what one connection may have in flight
// below the estimator's 16 MiB ceiling.
const (
	streamWindow = 256 << 10
	connWindow   = 1 << 20
)
