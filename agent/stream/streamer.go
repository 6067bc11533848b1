package stream

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Resolver looks a host name up; net.DefaultResolver.LookupHost is the
// production one.
type Resolver func(ctx context.Context, host string) ([]string, error)

// outgoing is the newest report with its encoded size, computed once, and
// its wire encoding, made once by the first replica that sends it and
// shared by the others.
type outgoing struct {
	report *telemetryv1.NodeReport
	size   int

	once    sync.Once
	encoded *grpc.PreparedMsg // nil if encoding failed: send the report
}

// message returns what to send on st: the report encoded once for every
// replica. A PreparedMsg carries the codec and compressor of the stream it
// was encoded on; every replica's stream has the same (the default proto
// codec, no compression: they share their dial options), so one encoding
// serves all.
func (o *outgoing) message(st grpc.ClientStream) any {
	o.once.Do(func() {
		pm := &grpc.PreparedMsg{}
		if err := pm.Encode(st, o.report); err == nil {
			o.encoded = pm
		}
	})
	if o.encoded == nil {
		return o.report
	}
	return o.encoded
}

// Streamer keeps one stream per picker replica and sends each the newest
// report.
type Streamer struct {
	opts     Options
	targets  []Target
	logger   *slog.Logger
	dialOpts func(host string) []grpc.DialOption
	resolve  Resolver
	metrics  *Metrics

	latest atomic.Pointer[outgoing]

	mu       sync.Mutex
	replicas map[string]*replica
	wg       sync.WaitGroup
	// resolveNow asks Run to resolve again before the interval is up.
	resolveNow chan struct{}
}

// minResolveGap rate-limits the early re-resolutions stream failures ask for.
const minResolveGap = time.Second

// New returns a streamer for opts; it does nothing until Run.
func New(opts Options, logger *slog.Logger) (*Streamer, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	creds, err := dialCredentials(opts)
	if err != nil {
		return nil, err
	}
	targets, _ := opts.Targets()
	return &Streamer{
		opts: opts, targets: targets, logger: logger, dialOpts: creds,
		resolve: net.DefaultResolver.LookupHost, metrics: NewMetrics(),
		replicas: make(map[string]*replica), resolveNow: make(chan struct{}, 1),
	}, nil
}

// SetResolver replaces the DNS lookup (tests). Call before Run.
func (s *Streamer) SetResolver(r Resolver) { s.resolve = r }

// Metrics returns the streamer's Prometheus collector.
func (s *Streamer) Metrics() *Metrics { return s.metrics }

// Publish makes r the newest report and wakes every replica. It never
// blocks: a replica busy sending picks r up when it is done, and a report
// it had not sent yet is dropped.
func (s *Streamer) Publish(r *telemetryv1.NodeReport) {
	s.latest.Store(&outgoing{report: r, size: proto.Size(r)})
	s.mu.Lock()
	for _, rep := range s.replicas {
		rep.wake()
	}
	s.mu.Unlock()
}

// resolveSoon asks for an early re-resolution (a stream failed: the
// replica may have moved). It never blocks.
func (s *Streamer) resolveSoon() {
	select {
	case s.resolveNow <- struct{}{}:
	default:
	}
}

// Run resolves the pickers now, every ResolveInterval and soon after a
// stream fails (at most once a second), and keeps the replicas' streams
// until ctx ends. It returns once every stream is closed.
func (s *Streamer) Run(ctx context.Context) {
	t := time.NewTicker(s.opts.ResolveInterval)
	defer t.Stop()
	for {
		s.sync(ctx)
		select {
		case <-s.resolveNow:
			select { // rate limit
			case <-time.After(minResolveGap):
			case <-ctx.Done():
			}
		case <-ctx.Done():
			s.mu.Lock()
			for addr, r := range s.replicas {
				r.stop()
				delete(s.replicas, addr)
			}
			s.mu.Unlock()
			s.wg.Wait()
			return
		case <-t.C:
		}
	}
}

// Replicas returns the addresses currently streamed to, sorted.
func (s *Streamer) Replicas() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.replicas))
	for a := range s.replicas {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// sync resolves every target and starts and stops replicas to match. A
// target that fails to resolve keeps its current replicas.
func (s *Streamer) sync(ctx context.Context) {
	want := make(map[string]string) // address → TLS server name
	var failed []Target
	for _, t := range s.targets {
		addrs, err := s.lookup(ctx, t.Host)
		if err != nil {
			s.logger.Warn("cannot resolve picker address; keeping its current streams", "host", t.Host, "err", err)
			failed = append(failed, t)
			continue
		}
		for _, a := range addrs {
			want[net.JoinHostPort(a, t.Port)] = t.Host
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for addr, r := range s.replicas {
		if _, ok := want[addr]; !ok && !r.fromAny(failed) {
			s.logger.Info("picker replica gone from DNS; closing its stream", "picker", addr)
			r.stop() // its goroutine drops its series on the way out
			delete(s.replicas, addr)
		}
	}
	for addr, host := range want {
		if _, ok := s.replicas[addr]; ok {
			continue
		}
		r, err := s.newReplica(ctx, addr, host)
		if err != nil {
			s.logger.Error("cannot set up picker stream", "picker", addr, "err", err)
			continue
		}
		s.replicas[addr] = r
		s.wg.Add(1)
		go func() { defer s.wg.Done(); r.run() }()
	}
	s.metrics.replicas.Set(float64(len(s.replicas)))
}

func (s *Streamer) lookup(ctx context.Context, host string) ([]string, error) {
	if net.ParseIP(host) != nil {
		return []string{host}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := s.resolve(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("no addresses")
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), err
}
