package modelserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headroom-dev/headroom/snapshot"
)

// MaxBodyBytes bounds a metrics response; a larger one is an error.
const MaxBodyBytes = 4 << 20

// acceptHeader asks for the text format, which every engine serves and
// which is the cheapest to filter; protobuf is decoded if sent anyway.
const acceptHeader = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

// ErrBodyTooLarge marks a response over MaxBodyBytes.
var ErrBodyTooLarge = fmt.Errorf("metrics response over %d bytes", MaxBodyBytes)

// Table is an immutable map of the newest readings, keyed by pod UID
// (Kubernetes) or "standalone/<name>".
type Table map[string]*snapshot.ModelServer

// targetSpec says what to scrape for one key.
type targetSpec struct {
	key, url string
	engine   Engine
}

// target is one scraped endpoint. Its reader (parser and buffer) belongs
// to the scrape in flight; inFlight guarantees there is at most one.
type target struct {
	targetSpec
	inFlight atomic.Bool
	// reading is the newest reading; nil before the first scrape ends.
	reading atomic.Pointer[snapshot.ModelServer]
	reader  *Reader
	// dropped counts the values left out since the target was added, by
	// reason (dropReason.String()); replaced, never modified, when it
	// grows, as readings share it.
	dropped map[string]uint64
	// warned marks the reasons already logged for this target.
	warned [numDropReasons]bool
}

// scraper scrapes a set of targets in rounds on its own clock.
type scraper struct {
	client  *http.Client
	timeout time.Duration
	logger  *slog.Logger

	mu      sync.Mutex
	targets []*target // replaced, never modified in place
	// added is signalled when targets arrive: the clock stops while
	// there are none (on a node with no model server it cost a quarter of
	// the agent's CPU in wake-ups).
	added chan struct{}
	// rounds counts rounds, for tests.
	rounds atomic.Int64

	latest  atomic.Pointer[Table]
	updated chan struct{}
}

func newScraper(timeout time.Duration, logger *slog.Logger) *scraper {
	client := NewClient(timeout, nil)
	s := &scraper{client: client, timeout: timeout, logger: logger, updated: make(chan struct{}, 1), added: make(chan struct{}, 1)}
	empty := Table{}
	s.latest.Store(&empty)
	return s
}

// setTargets replaces the target set. A target whose URL and engine are
// unchanged keeps its state (and its last reading); a removed one is
// dropped, and a scrape of it still in flight is discarded. It reports
// whether the set changed.
func (s *scraper) setTargets(specs []targetSpec) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := make(map[string]*target, len(s.targets))
	for _, t := range s.targets {
		old[t.key] = t
	}
	changed := len(specs) != len(s.targets)
	next := make([]*target, 0, len(specs))
	for _, sp := range specs {
		if t, ok := old[sp.key]; ok && t.targetSpec == sp {
			next = append(next, t)
			continue
		}
		changed = true
		next = append(next, &target{targetSpec: sp, reader: NewReader(s.client)})
	}
	if changed {
		s.targets = next
	}
	if changed && len(next) > 0 {
		select {
		case s.added <- struct{}{}:
		default:
		}
	}
	return changed
}

func (s *scraper) current() []*target {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.targets
}

// run scrapes a round every interval until ctx ends. A round that overruns
// delays the next one. While there are no targets the clock stops: the
// next round is the moment targets arrive.
func (s *scraper) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		tick, added := t.C, (<-chan struct{})(nil)
		if s.round(ctx) == 0 {
			// That round published the empty table; targets that came
			// since have signalled.
			tick, added = nil, s.added
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-added:
			t.Reset(interval)
		}
	}
}

// roundGrace is how long past the timeout a round waits for scrapes
// still returning (a cancelled request takes a moment to unwind) before
// it publishes without them; they are published by a later round.
const roundGrace = 50 * time.Millisecond

// round scrapes every target not still in flight, all under one
// deadline, then publishes the readings. It returns by the timeout (plus
// a little grace) whatever the endpoints do, with the number of targets
// it had.
func (s *scraper) round(ctx context.Context) int {
	s.rounds.Add(1)
	targets := s.current()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, t := range targets {
		if !t.inFlight.CompareAndSwap(false, true) {
			continue // the previous scrape has not returned
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer t.inFlight.Store(false)
			s.scrapeOne(ctx, t)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		timer := time.NewTimer(roundGrace)
		select {
		case <-done:
		case <-timer.C:
		}
		timer.Stop()
	}
	s.publish(targets)
	return len(targets)
}

// scrapeOne fetches and parses one target and stores its new reading. A
// failure keeps the last good stats and sample time and marks it stale.
func (s *scraper) scrapeOne(ctx context.Context, t *target) {
	stats, err := t.reader.Read(ctx, t.url, t.engine)
	now := time.Now()
	s.countDrops(t)
	prev := t.reading.Load()
	if err == nil {
		t.reading.Store(&snapshot.ModelServer{Engine: string(t.engine), URL: t.url, SampleTime: now, Stats: stats, Dropped: t.dropped})
		if prev != nil && prev.Stale() {
			s.logger.Info("model server answers again", "target", t.key, "url", t.url)
		}
		return
	}
	if prev != nil && prev.Stale() && prev.Err == err.Error() && maps.Equal(prev.Dropped, t.dropped) {
		return // still failing the same way: nothing new to publish
	}
	next := &snapshot.ModelServer{Engine: string(t.engine), URL: t.url, StaleSince: now, Err: err.Error(), Dropped: t.dropped}
	if prev != nil {
		next.SampleTime, next.Stats = prev.SampleTime, prev.Stats
		if prev.Stale() {
			next.StaleSince = prev.StaleSince
		}
	}
	if prev == nil || !prev.Stale() {
		s.logger.Warn("model server scrape failed; keeping its last reading", "target", t.key, "url", t.url, "err", err)
	}
	t.reading.Store(next)
}

// countDrops adds the values the last parse left out to the target's
// counts, logging each reason the first time it shows.
func (s *scraper) countDrops(t *target) {
	d := &t.reader.parser.dropped
	if !d.any() {
		return
	}
	next := make(map[string]uint64, len(t.dropped)+1)
	maps.Copy(next, t.dropped)
	for r, n := range d {
		if n == 0 {
			continue
		}
		reason := dropReason(r)
		next[reason.String()] += uint64(n)
		if !t.warned[r] {
			t.warned[r] = true
			s.logger.Warn("model server serves impossible values; leaving them out (counted in headroom_modelserver_values_dropped_total)",
				"target", t.key, "url", t.url, "reason", reason.String(), "values", n)
		}
	}
	t.dropped = next
}

// unwrapURL drops url.Error's repetition of method and URL (the log line
// and the reading carry the URL already).
func unwrapURL(err error) error {
	if inner := errors.Unwrap(err); inner != nil {
		return inner
	}
	return err
}

// publish stores the targets' readings as the newest table and signals
// Updated when anything changed. It never blocks on the consumer.
func (s *scraper) publish(targets []*target) {
	prev := *s.latest.Load()
	next := make(Table, len(targets))
	changed := false
	for _, t := range targets {
		r := t.reading.Load()
		if r == nil {
			continue
		}
		next[t.key] = r
		if prev[t.key] != r {
			changed = true
		}
	}
	if !changed && len(next) == len(prev) {
		return
	}
	s.latest.Store(&next)
	select {
	case s.updated <- struct{}{}:
	default:
	}
}
