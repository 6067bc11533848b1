package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Options configures a load run.
type Options struct {
	// URL is the gateway's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Model is the model named in each request.
	Model string
	// Chat sends /v1/chat/completions instead of /v1/completions.
	Chat bool
	// Rate is the mean arrival rate in requests per second (Poisson).
	Rate float64
	// Duration is how long requests keep arriving.
	Duration time.Duration
	// Drain is how long to wait for requests in flight after Duration.
	Drain time.Duration
	// Timeout bounds each request.
	Timeout time.Duration
	Mix     Mix
	// Conversations, when on, makes requests share prefixes (system
	// prompts, multi-turn histories); the Mix then draws each turn's
	// user message and output.
	Conversations Conversations
	// Adapters are LoRA adapters: a request names one of them, drawn
	// evenly, instead of Model with probability AdapterShare.
	Adapters     []string
	AdapterShare float64
	Seed         uint64
	// Client sends the requests (default: one with 1,024 idle
	// connections per host, so the generator is not the bottleneck).
	Client *http.Client
}

// DefaultOptions is a minute of streaming completions at 10 requests per
// second with the ShareGPT-like mix.
func DefaultOptions() Options {
	return Options{Model: "llama-3-8b", Rate: 10, Duration: time.Minute, Drain: 2 * time.Minute,
		Timeout: 3 * time.Minute, Mix: ShareGPT(), Seed: 1}
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("loadgen: URL is empty"))
	}
	if o.Rate <= 0 {
		errs = append(errs, fmt.Errorf("loadgen: rate %g: want > 0", o.Rate))
	}
	if o.Duration <= 0 || o.Timeout <= 0 || o.Drain < 0 {
		errs = append(errs, errors.New("loadgen: duration and timeout must be positive, drain non-negative"))
	}
	if o.AdapterShare < 0 || o.AdapterShare > 1 || (o.AdapterShare > 0 && len(o.Adapters) == 0) {
		errs = append(errs, errors.New("loadgen: adapter share must be in [0, 1], with adapters when above 0"))
	}
	return errors.Join(append(errs, o.Mix.Validate(), o.Conversations.Validate())...)
}

// Record is what the client saw of one request.
type Record struct {
	Start time.Time
	// TTFT is the time to the first token; 0 when none came.
	TTFT, Latency              time.Duration
	PromptTokens, OutputTokens int
	// Status is the HTTP status; 0 when the request never got one.
	Status int
	// Err is set when the request failed (status, transport, or a
	// stream that ended early).
	Err string
	// ServedBy is the server that answered (its X-Served-By header).
	ServedBy string
	// Upstream is the endpoint (ip:port) the gateway says served it
	// (X-Gateway-Upstream), whatever the server.
	Upstream string
}

// OK reports whether the request succeeded.
func (r Record) OK() bool { return r.Err == "" }

// Generator sends requests and keeps their records. Each Run or Burst
// returns only its own records.
type Generator struct {
	o      Options
	client *http.Client
	path   string
	// conv is the open conversations (Options.Conversations), used by
	// the arrival loop only.
	conv *conversations

	mu   sync.Mutex
	recs []Record
	wg   sync.WaitGroup
	// inFlight counts requests sent and not yet finished.
	inFlight int
}

// New returns a generator for o.
func New(o Options) (*Generator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := o.Client
	if c == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost, t.MaxConnsPerHost = 4096, 1024, 0
		c = &http.Client{Transport: t}
	}
	path := "/v1/completions"
	if o.Chat {
		path = "/v1/chat/completions"
	}
	g := &Generator{o: o, client: c, path: path}
	if o.Conversations.On() {
		g.conv = newConversations(o.Conversations, o.Mix, o.Seed)
	}
	return g, nil
}

// Run sends requests at the options' rate for their duration, then waits
// up to Drain for those in flight, and returns every record in start
// order. onDone, if set, is called as each request finishes, from that
// request's goroutine (so concurrently).
func (g *Generator) Run(ctx context.Context, onDone func(Record)) []Record {
	rng := rand.New(rand.NewPCG(g.o.Seed, 0x6c6f6164))
	g.reset()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	next := start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / g.o.Rate * float64(time.Second)))
		if next.Sub(start) >= g.o.Duration {
			break
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return g.finish(ctx, cancel)
		case <-timer.C:
		}
		g.launch(rctx, rng, onDone)
	}
	return g.finish(ctx, cancel)
}

// Burst sends n requests at once and waits for them.
func (g *Generator) Burst(ctx context.Context, n int, onDone func(Record)) []Record {
	rng := rand.New(rand.NewPCG(g.o.Seed, 0x62757273))
	g.reset()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range n {
		g.launch(rctx, rng, onDone)
	}
	return g.finish(ctx, cancel)
}

func (g *Generator) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recs = nil
}

// InFlight is the number of requests sent and not yet finished.
func (g *Generator) InFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inFlight
}

// model is the model the next request names: an adapter with probability
// AdapterShare, else Model.
func (g *Generator) model(rng *rand.Rand) string {
	if g.o.AdapterShare > 0 && rng.Float64() < g.o.AdapterShare {
		return g.o.Adapters[rng.IntN(len(g.o.Adapters))]
	}
	return g.o.Model
}

func (g *Generator) launch(ctx context.Context, rng *rand.Rand, onDone func(Record)) {
	var text string
	var prompt, output int
	if g.conv != nil {
		text, prompt, output = g.conv.next(rng)
	} else {
		prompt, output = g.o.Mix.Sample(rng)
		text = Prompt(rng, prompt)
	}
	body := g.body(g.model(rng), text, output)
	g.mu.Lock()
	g.inFlight++
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		rec := g.send(ctx, body)
		rec.PromptTokens = prompt
		g.mu.Lock()
		g.recs = append(g.recs, rec)
		g.inFlight--
		g.mu.Unlock()
		if onDone != nil {
			onDone(rec)
		}
	}()
}

// finish waits for the requests in flight, at most Drain, then cancels
// the rest (they are recorded as failed), and returns the records sorted
// by start.
func (g *Generator) finish(ctx context.Context, cancel context.CancelFunc) []Record {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	drain := time.NewTimer(g.o.Drain)
	defer drain.Stop()
	select {
	case <-done:
	case <-drain.C:
	case <-ctx.Done():
	}
	cancel()
	<-done
	g.mu.Lock()
	defer g.mu.Unlock()
	out := append([]Record(nil), g.recs...)
	sortByStart(out)
	return out
}
