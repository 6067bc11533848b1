// Package modelserver is the agent's model-server source: it scrapes the
// Prometheus endpoint of every GPU pod's model server on the node (vLLM,
// SGLang, trtllm-serve, Triton's TensorRT-LLM backend) on its own fast
// clock and keeps the routing signals: waiting and running requests,
// KV-cache use, LoRA adapters and the totals of the latency histograms
// (time to first token, per output token, and vLLM's request stages).
// Pages are read by a line scanner that looks only at the wanted
// families (scan.go), not by a general exposition parser.
//
// In Kubernetes the targets are the GPU pods the pods source's enrich step
// found (this source's enrich step comes after it in the collector table);
// on a host with no kubelet they are listed with --modelserver.endpoints
// or --modelserver.endpoints-file and reported as pods. A slow, hanging or
// garbled endpoint marks only itself stale and keeps its last reading.
// Updated and Newest feed the report stream between sampling ticks.
package modelserver

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/headroom-dev/headroom/collector"
	"github.com/headroom-dev/headroom/snapshot"
)

// Name is the source's name in the collector table.
const Name = "modelserver"

// Limits and defaults.
const (
	DefaultInterval = 100 * time.Millisecond
	MinInterval     = 10 * time.Millisecond
	MinTimeout      = 50 * time.Millisecond
	DefaultPort     = 8000
)

// Options configures the source.
type Options struct {
	Interval time.Duration
	// Timeout bounds one scrape; 0 means 80% of Interval, at least
	// MinTimeout.
	Timeout     time.Duration
	DefaultPort int
	// Endpoints and EndpointsFile list standalone model servers (see
	// ParseEndpoints and ParseEndpointsFile).
	Endpoints     string
	EndpointsFile string
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{Interval: DefaultInterval, DefaultPort: DefaultPort}
}

// AddFlags registers the source's flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Interval, "modelserver.interval", o.Interval, "how often to scrape every model server on the node")
	fs.DurationVar(&o.Timeout, "modelserver.timeout", o.Timeout, "time limit of one scrape (0: 80% of --modelserver.interval, at least 50ms)")
	fs.IntVar(&o.DefaultPort, "modelserver.default-port", o.DefaultPort, "metrics port of a pod without a headroom.dev/metrics-port or prometheus.io/port annotation")
	fs.StringVar(&o.Endpoints, "modelserver.endpoints", o.Endpoints, "standalone model servers, space-separated entries of comma-separated key=value: name=N,endpoint=IP:PORT[,engine=E][,gpus=0;1][,metrics=URL]")
	fs.StringVar(&o.EndpointsFile, "modelserver.endpoints-file", o.EndpointsFile, "JSON file listing standalone model servers ({\"endpoints\": [{\"name\", \"endpoint\", \"engine\", \"gpus\", \"metrics\"}]})")
}

// EffectiveTimeout is the per-scrape time limit in force.
func (o *Options) EffectiveTimeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return max(o.Interval*4/5, MinTimeout)
}

// Validate checks the options, the standalone endpoints included, and
// reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.Interval < MinInterval {
		errs = append(errs, fmt.Errorf("--modelserver.interval %s is below %s", o.Interval, MinInterval))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("--modelserver.timeout %s is negative", o.Timeout))
	}
	if o.DefaultPort < 1 || o.DefaultPort > 65535 {
		errs = append(errs, fmt.Errorf("--modelserver.default-port %d is not in 1-65535", o.DefaultPort))
	}
	if _, err := o.endpoints(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// endpoints parses the inline and file lists together.
func (o *Options) endpoints() ([]Endpoint, error) {
	var errs []error
	inline, err := ParseEndpoints(o.Endpoints)
	if err != nil {
		errs = append(errs, fmt.Errorf("--modelserver.endpoints: %w", err))
	}
	var file []Endpoint
	if o.EndpointsFile != "" {
		if file, err = ParseEndpointsFile(o.EndpointsFile); err != nil {
			errs = append(errs, fmt.Errorf("--modelserver.endpoints-file: %w", err))
		}
	}
	all := append(inline, file...)
	seen := map[string]bool{}
	for _, e := range all {
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("standalone endpoint %q is listed twice", e.Name))
		}
		seen[e.Name] = true
	}
	return all, errors.Join(errs...)
}

// Entry is the modelserver collector's row of the collector table, with
// options o.
func Entry(o Options) collector.Entry {
	opts := &o
	return collector.Entry{
		// Default on: no GPU pods and no standalone endpoints means
		// nothing to scrape.
		Name: Name, DefaultOn: true,
		Help:    "each GPU pod's model-server metrics (vLLM, SGLang, TRT-LLM, Triton): queue, running batch, KV-cache use, LoRA adapters",
		Options: opts,
		// The overlay reads the pods the join found (and the GPUs, for
		// standalone endpoints) and adds standalone pods and readings.
		Reads:  []snapshot.Section{snapshot.SectionGPUs, snapshot.SectionAttribution},
		Writes: []snapshot.Section{snapshot.SectionAttribution, snapshot.SectionModelServers},
		New: func(env collector.Env) (collector.Source, error) {
			return New(env.Ctx, *opts, env.Logger)
		},
	}
}

// Source is the model-server source.
type Source struct {
	opts       Options
	scraper    *scraper
	standalone []Endpoint
	logger     *slog.Logger
	cancel     context.CancelFunc
	pods       *podTargets
	gpuRefs    *onceLog
}

// New parses the standalone endpoints and starts the scrape loop, which
// runs until ctx ends or Close.
func New(ctx context.Context, o Options, logger *slog.Logger) (*Source, error) {
	eps, err := o.endpoints()
	if err != nil {
		return nil, err
	}
	s := &Source{
		opts: o, scraper: newScraper(o.EffectiveTimeout(), logger), standalone: eps, logger: logger,
		pods: newPodTargets(o.DefaultPort, logger), gpuRefs: newOnceLog(),
	}
	s.scraper.setTargets(s.pods.specs(nil, eps))
	ctx, s.cancel = context.WithCancel(ctx)
	go s.scraper.run(ctx, o.Interval)
	return s, nil
}

// Close stops the scrape loop and closes idle connections.
func (s *Source) Close() error {
	s.cancel()
	s.scraper.client.CloseIdleConnections()
	return nil
}

// Latest returns the newest round's readings. The table is shared and
// must not be modified; loading it takes no lock.
func (s *Source) Latest() Table { return *s.scraper.latest.Load() }

// Updated is signalled (without blocking) after every scrape round that
// changed anything. It has capacity 1: a slow reader sees one signal for
// several rounds and reads Newest then.
func (s *Source) Updated() <-chan struct{} { return s.scraper.updated }

// Newest returns the newest round's reading of a pod, or nil, for reports
// sent between sampling ticks. The lookup reads one round's table (loaded
// once, immutable), so one report never mixes two rounds.
func (s *Source) Newest() func(*snapshot.Pod) *snapshot.ModelServer {
	table := s.Latest()
	return func(p *snapshot.Pod) *snapshot.ModelServer { return table[Key(p)] }
}

// Key is the Table key of a snapshot pod: its UID, or
// "standalone/<name>" for a standalone endpoint.
func Key(p *snapshot.Pod) string {
	if p.UID == "" && p.Namespace == "" {
		return standaloneKey(p.Name)
	}
	return p.UID
}

func standaloneKey(name string) string { return "standalone/" + name }

// Collect reads nothing itself: the scrapes run on their own clock. Its
// enrich step adds the standalone endpoints as pods, points the scraper at
// the snapshot's GPU pods and attaches each pod's newest reading. It never
// fails: a pod whose server does not answer carries a stale reading.
func (s *Source) Collect(ctx context.Context) (collector.Reading, error) {
	if err := ctx.Err(); err != nil {
		return collector.Reading{}, err
	}
	return collector.Reading{Enrich: s.enrich}, nil
}

// enrich is the enrich step. It reads the snapshot's pods and GPUs and
// returns the pods, standalone ones added, each with its newest reading.
func (s *Source) enrich(_ context.Context, snap *snapshot.Snapshot) (snapshot.Part, error) {
	var pods []snapshot.Pod
	if snap.Attribution != nil {
		pods = snap.Attribution.Pods
		s.scraper.setTargets(s.pods.specs(pods, s.standalone))
	}
	// With no attribution this sample (the pods collector failed or missed
	// its deadline; or there is none, and the standalone endpoints were set
	// at start), the targets stay as they are: dropping them would lose
	// every pod's last reading to a fault of another collector.
	if snap.Attribution == nil && len(s.standalone) == 0 {
		return nil, nil // no pods to read for
	}
	if len(s.standalone) > 0 {
		pods = addStandalone(pods, snap.GPUs, s.standalone, s.gpuRefs, s.logger)
	} else {
		pods = slices.Clone(pods)
	}
	table := s.Latest()
	for i := range pods {
		pods[i].ModelServer = table[Key(&pods[i])]
	}
	return func(snap *snapshot.Snapshot) {
		if snap.Attribution == nil {
			snap.Attribution = &snapshot.Attribution{}
		}
		snap.Attribution.Pods = pods
	}, nil
}
