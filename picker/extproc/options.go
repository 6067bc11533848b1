package extproc

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Defaults of Options.
const (
	// DefaultFallbackEndpoints is how many endpoints the destination
	// header and metadata carry: the primary and two fallbacks.
	DefaultFallbackEndpoints = 3
	// DefaultMaxBodyBytes is the largest request body the picker buffers.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultChunkBytes is the size of the body chunks sent back to Envoy.
	// Some Envoy builds cap a streamed chunk at 64 KiB; the reference EPP
	// uses 62,000 bytes for a safe margin, and so do we.
	DefaultChunkBytes = 62000
	// DefaultMaxStreams bounds the ext_proc streams served at once: every
	// request in flight through the gateway holds one until its response
	// ends, so size it to rate × response time per replica. A held stream
	// costs the picker about 31 KiB (docs/reliability.md): 8,192 of them
	// about 250 MiB.
	DefaultMaxStreams = 8192
	// DefaultMaxBufferedBytes is the budget of request bodies, response
	// bodies kept for their usage, and request headers held by all streams
	// together: 128 MiB, which the Go heap may hold twice over between
	// collections. With the streams, the picker stays within about
	// 560 MiB under attack, under the chart's 1 GiB limit.
	DefaultMaxBufferedBytes = 128 << 20
	// DefaultRequestIdleTimeout is the longest wait for the next message
	// while a request is undecided (its headers, then each body chunk).
	DefaultRequestIdleTimeout = 30 * time.Second
	// DefaultResponseTimeout caps the age of an unanswered pick: from the
	// decision to the response headers. GKE's GIE backend policy allows a
	// backend 300 s.
	DefaultResponseTimeout = 5 * time.Minute
	// DefaultResponseIdleTimeout is the longest gap between response body
	// chunks.
	DefaultResponseIdleTimeout = 5 * time.Minute
	// Keepalive: a gateway may ping every 10 s (and between requests); the
	// picker pings an idle connection after 30 s and drops it 10 s after
	// an unanswered ping, which ends its streams and releases their picks.
	DefaultKeepaliveMinTime = 10 * time.Second
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 10 * time.Second
)

// MaxModelBytes is the longest model name accepted (the GIE InferenceModel
// API capped modelName at 256 too); longer names get 400.
const MaxModelBytes = 256

// Options configures the ext_proc server.
type Options struct {
	// FallbackEndpoints is the most endpoints written, best first, into
	// x-gateway-destination-endpoint (comma-joined); 1 sends the primary alone.
	FallbackEndpoints int
	// MaxBodyBytes is the largest request body accepted (larger: 413). It
	// also caps the JSON response body kept to read its usage.
	MaxBodyBytes int
	// ChunkBytes is the size of the request body chunks sent back to Envoy.
	ChunkBytes int
	// MaxStreams is the most streams served at once; more get 429.
	MaxStreams int
	// MaxBufferedBytes is the budget of bytes all streams may hold; a
	// request that would go over it gets 429 with Retry-After.
	MaxBufferedBytes int64
	// RequestIdleTimeout, ResponseTimeout and ResponseIdleTimeout are the
	// phase deadlines (see the defaults).
	RequestIdleTimeout, ResponseTimeout, ResponseIdleTimeout time.Duration
	// KeepaliveMinTime, KeepaliveTime and KeepaliveTimeout are the gRPC
	// keepalive enforcement and server pings (GRPCServerOptions).
	KeepaliveMinTime, KeepaliveTime, KeepaliveTimeout time.Duration
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{
		FallbackEndpoints: DefaultFallbackEndpoints, MaxBodyBytes: DefaultMaxBodyBytes, ChunkBytes: DefaultChunkBytes,
		MaxStreams: DefaultMaxStreams, MaxBufferedBytes: DefaultMaxBufferedBytes,
		RequestIdleTimeout: DefaultRequestIdleTimeout, ResponseTimeout: DefaultResponseTimeout, ResponseIdleTimeout: DefaultResponseIdleTimeout,
		KeepaliveMinTime: DefaultKeepaliveMinTime, KeepaliveTime: DefaultKeepaliveTime, KeepaliveTimeout: DefaultKeepaliveTimeout,
	}
}

// AddFlags registers the flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.FallbackEndpoints, "extproc.fallback-endpoints", o.FallbackEndpoints, "endpoints sent in x-gateway-destination-endpoint, best first (1: the primary alone)")
	fs.IntVar(&o.MaxBodyBytes, "extproc.max-body-bytes", o.MaxBodyBytes, "largest request body buffered; larger requests get 413")
	fs.IntVar(&o.ChunkBytes, "extproc.chunk-bytes", o.ChunkBytes, "size of the request body chunks streamed back to the gateway")
	fs.IntVar(&o.MaxStreams, "extproc.max-streams", o.MaxStreams, "most ext_proc streams (requests in flight through the gateways) served at once; more get 429")
	fs.Int64Var(&o.MaxBufferedBytes, "extproc.max-buffered-bytes", o.MaxBufferedBytes, "budget of request bodies, headers and metered response bodies held by all streams together; a request over it gets 429 with Retry-After")
	fs.DurationVar(&o.RequestIdleTimeout, "extproc.request-idle-timeout", o.RequestIdleTimeout, "longest wait for the next request message (headers, body chunk) before the decision; then 408")
	fs.DurationVar(&o.ResponseTimeout, "extproc.response-timeout", o.ResponseTimeout, "longest wait from the decision to the response headers; then the pick is released and the stream ended (keep the gateway's route timeout shorter)")
	fs.DurationVar(&o.ResponseIdleTimeout, "extproc.response-idle-timeout", o.ResponseIdleTimeout, "longest gap between response body chunks; then the pick is released and the stream ended")
	fs.DurationVar(&o.KeepaliveMinTime, "extproc.keepalive-min-time", o.KeepaliveMinTime, "gateways pinging more often than this are disconnected (gRPC keepalive enforcement)")
	fs.DurationVar(&o.KeepaliveTime, "extproc.keepalive-time", o.KeepaliveTime, "ping a gateway connection idle this long")
	fs.DurationVar(&o.KeepaliveTimeout, "extproc.keepalive-timeout", o.KeepaliveTimeout, "drop a gateway connection whose ping goes unanswered this long (its streams end, their picks are released)")
}

// Validate checks the options and lists every problem.
func (o *Options) Validate() error {
	var errs []error
	if o.FallbackEndpoints < 1 || o.FallbackEndpoints > 64 {
		errs = append(errs, fmt.Errorf("--extproc.fallback-endpoints %d: want 1 to 64", o.FallbackEndpoints))
	}
	if o.MaxBodyBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("--extproc.max-body-bytes %d: want at least 1024", o.MaxBodyBytes))
	}
	if o.ChunkBytes < 1<<10 || o.ChunkBytes > 64<<10 {
		errs = append(errs, fmt.Errorf("--extproc.chunk-bytes %d: want 1024 to 65536 (Envoy may cap a chunk at 64 KiB)", o.ChunkBytes))
	}
	if o.MaxStreams < 1 {
		errs = append(errs, fmt.Errorf("--extproc.max-streams %d: want at least 1", o.MaxStreams))
	}
	if o.MaxBufferedBytes < int64(o.MaxBodyBytes) {
		errs = append(errs, fmt.Errorf("--extproc.max-buffered-bytes %d: want at least --extproc.max-body-bytes (%d), or no body that size could ever be taken", o.MaxBufferedBytes, o.MaxBodyBytes))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--extproc.request-idle-timeout", o.RequestIdleTimeout}, {"--extproc.response-timeout", o.ResponseTimeout},
		{"--extproc.response-idle-timeout", o.ResponseIdleTimeout}, {"--extproc.keepalive-min-time", o.KeepaliveMinTime},
		{"--extproc.keepalive-time", o.KeepaliveTime}, {"--extproc.keepalive-timeout", o.KeepaliveTimeout},
	} {
		if d.v <= 0 || d.v > 24*time.Hour {
			errs = append(errs, fmt.Errorf("%s %s: want more than 0, at most 24h", d.flag, d.v))
		}
	}
	return errors.Join(errs...)
}

// Flow-control windows of the ext_proc port. gRPC otherwise grows them
// with its bandwidth estimate up to 16 MiB a stream, bytes that sit in the
// transport, outside the buffer budget, while a handler is busy; 1 MiB a
// stream is several times a gateway's body chunk, 4 MiB a connection.
const (
	streamWindow     = 1 << 20
	connectionWindow = 4 << 20
)

// GRPCServerOptions are the gRPC server settings the ext_proc port needs:
// keepalive enforcement and pings, fixed flow-control windows, and no more
// streams on one gateway connection than the server serves in all.
func (o *Options) GRPCServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: o.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: o.KeepaliveTime, Timeout: o.KeepaliveTimeout}),
		grpc.MaxConcurrentStreams(uint32(min(o.MaxStreams, 1<<31-1))),
		grpc.InitialWindowSize(streamWindow),
		grpc.InitialConnWindowSize(connectionWindow),
	}
}
