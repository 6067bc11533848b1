// Package modelsim simulates an LLM model server: it speaks the OpenAI API
// (completions, chat completions, models) and schedules requests the way a
// continuous-batching GPU server such as vLLM does, in real time, so that
// the headroom demo and the routing benchmark can run many of them in one
// process with no GPU.
//
// The model, kept small enough to reason about, is vLLM's: a FIFO waiting
// queue, admission bounded by a batch size and by free KV cache, iterations
// that prefill prompts in chunks and decode one token for every running
// sequence, an iteration time linear in the work, and preemption by
// recompute when the KV cache runs out. A Profile holds one GPU's speed;
// Server.Run is the scheduler loop, Server.Handler the HTTP API, and
// /metrics exports vLLM's metric names so the agent reads it as it reads
// vLLM. docs/simulator.md documents the model and the profiles.
package modelsim

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// GPU is told the server's load after every iteration so the simulated GPU
// under it moves.
type GPU interface{ SetLoad(busy float64) } // 0..1

// Defaults and limits.
const (
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultMaxWaiting    = 1024
	DefaultLoadWindow    = time.Second
	// DefaultMaxTokens is the output length of a request that names none.
	DefaultMaxTokens = 16
	// MaxOutputTokens is the largest max_tokens accepted.
	MaxOutputTokens = 4096
	// MaxBodyBytes bounds a request body; a larger one gets 413.
	MaxBodyBytes = 1 << 20
)

// Options configures a Server.
type Options struct {
	Name          string        // pod name (logs, the X-Served-By header)
	Model         string        // served model name; requests for another model get 404
	Profile       Profile       // the GPU's speed (LookupProfile)
	FlushInterval time.Duration // streaming: the first token is flushed at once, later tokens at most this often (default 100ms)
	MaxWaiting    int           // waiting-queue bound; beyond it 503 (default 1024)
	GPU           GPU           // optional
	Logger        *slog.Logger  // optional
	// LoadWindow is the time constant of the busy average handed to
	// GPU.SetLoad and reported in Stats.Busy (default 1s).
	LoadWindow time.Duration
	// LoRAs are the LoRA adapters it serves besides Model; MaxLoRAs how
	// many distinct ones a batch may hold (default 1 with adapters).
	LoRAs    []string
	MaxLoRAs int
}

// Validate reports every problem of the options at once.
func (o Options) Validate() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if o.Model == "" {
		errs = append(errs, errors.New("model is empty"))
	}
	if err := o.Profile.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.FlushInterval < 0 {
		errs = append(errs, fmt.Errorf("flush interval %s is negative", o.FlushInterval))
	}
	if o.MaxWaiting < 0 {
		errs = append(errs, fmt.Errorf("max waiting %d is negative", o.MaxWaiting))
	}
	if o.LoadWindow < 0 {
		errs = append(errs, fmt.Errorf("load window %s is negative", o.LoadWindow))
	}
	if o.MaxLoRAs < 0 || slices.Contains(o.LoRAs, "") || slices.Contains(o.LoRAs, o.Model) {
		errs = append(errs, errors.New("LoRA adapters need names other than the model's and a non-negative max-loras"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("modelsim options: %w", err)
	}
	return nil
}

// Errors a request can end with.
var (
	// ErrStopped: the server's Run has ended (or ended the request).
	ErrStopped = errors.New("server stopping")
	// ErrQueueFull: the waiting queue holds MaxWaiting requests.
	ErrQueueFull = errors.New("waiting queue full")
	// ErrAlreadyRun: Run was called a second time.
	ErrAlreadyRun = errors.New("modelsim: Run already called")
	errCancelled  = errors.New("client went away")
)

// Stats is a server's state at one moment.
type Stats struct {
	Running, Waiting int
	KVUsage          float64 // fraction of the KV cache in use, 0..1
	// Completed requests ran to max_tokens; Failed ones ended early
	// (client gone, server stopped); Preempted counts preemptions.
	Completed, Failed, Preempted  uint64
	PromptTokens, GeneratedTokens uint64
	Busy                          float64 // the load last given to the GPU, 0..1
}

// Server is one simulated model server.
type Server struct {
	name, model string
	prof        Profile
	flush       time.Duration
	maxWaiting  int
	loadWindow  time.Duration
	gpu         GPU
	log         *slog.Logger
	metrics     *metrics
	handler     http.Handler

	ids          atomic.Uint64
	slowdown     atomic.Uint64 // float64 bits
	metricsDelay atomic.Int64  // nanoseconds
	started      atomic.Bool
	wake         chan struct{} // capacity 1: something to schedule

	mu      sync.Mutex
	stopped bool
	waiting []*request // FIFO; preempted requests go back to the head
	running []*request // in admission order
	kvUsed  int
	prefix  *prefixCache
	// loras are the adapters served; maxLoRAs per batch.
	loras    []string
	maxLoRAs int
	busy     float64
	busyAt   time.Time
	counts   struct{ completed, failed, preempted, prompt, generated uint64 }
}

// New validates the options and builds a server. It serves requests once
// Run is running; requests that come before wait in the queue.
func New(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.FlushInterval == 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxWaiting == 0 {
		o.MaxWaiting = DefaultMaxWaiting
	}
	if o.LoadWindow == 0 {
		o.LoadWindow = DefaultLoadWindow
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		name: o.Name, model: o.Model, prof: o.Profile, flush: o.FlushInterval,
		maxWaiting: o.MaxWaiting, loadWindow: o.LoadWindow, gpu: o.GPU,
		log:  o.Logger.With("modelserver", o.Name),
		wake: make(chan struct{}, 1), busyAt: time.Now(), prefix: newPrefixCache(o.Profile.KVCacheTokens),
		loras: slices.Clone(o.LoRAs), maxLoRAs: o.MaxLoRAs,
	}
	if len(s.loras) > 0 && s.maxLoRAs == 0 {
		s.maxLoRAs = 1
	}
	s.slowdown.Store(math.Float64bits(1))
	s.metrics = newMetrics(s)
	s.handler = s.routes()
	return s, nil
}

// Handler serves POST /v1/completions, POST /v1/chat/completions,
// GET /v1/models, GET /metrics and GET /health.
func (s *Server) Handler() http.Handler { return s.handler }

// SetSlowdown multiplies every iteration's time from the next iteration
// on: 1 is nominal, a throttled GPU 2, a co-tenant eating a third of the
// SMs 1.5. f < 1 (or NaN) is clamped to 1.
func (s *Server) SetSlowdown(f float64) {
	if !(f >= 1) || math.IsInf(f, 0) {
		f = 1
	}
	s.slowdown.Store(math.Float64bits(f))
}

// SetMetricsDelay makes /metrics answer only after d (a hanging metrics
// endpoint, for fault tests); 0 turns it off.
func (s *Server) SetMetricsDelay(d time.Duration) { s.metricsDelay.Store(int64(max(d, 0))) }

// Stats returns the server's current state.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Running: len(s.running), Waiting: len(s.waiting),
		KVUsage:   float64(s.kvUsed) / float64(s.prof.KVCacheTokens),
		Completed: s.counts.completed, Failed: s.counts.failed, Preempted: s.counts.preempted,
		PromptTokens: s.counts.prompt, GeneratedTokens: s.counts.generated,
		Busy: s.busy,
	}
}

// CountTokens is the simulator's tokenizer: ceil(len(bytes)/4), about
// what a BPE tokenizer gives for English text.
func CountTokens(text string) int { return (len(text) + 3) / 4 }

// signal wakes the scheduler without blocking.
func (s *Server) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
