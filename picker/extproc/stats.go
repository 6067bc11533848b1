package extproc

import "sync/atomic"

// Reasons a request is refused for a limit (Stats.Refused keys).
const (
	RefusedStreams  = "too_many_streams" // 429: --extproc.max-streams reached
	RefusedBuffer   = "buffer_full"      // 429: --extproc.max-buffered-bytes spent
	RefusedTooLarge = "body_too_large"   // 413: over --extproc.max-body-bytes
	RefusedTimeout  = "request_timeout"  // 408: the body stalled
	RefusedModel    = "invalid_model"    // 400: control characters, not UTF-8, or over MaxModelBytes
)

var refusedReasons = [...]string{RefusedStreams, RefusedBuffer, RefusedTooLarge, RefusedTimeout, RefusedModel}

// Stats are the server's gauges and counters.
type Stats struct {
	// Streams is the streams served now.
	Streams int64
	// BufferedBytes is what the streams hold against the budget now;
	// BufferLimit is the budget.
	BufferedBytes, BufferLimit int64
	// Refused counts requests answered 429, 413, 408 or 400 for a limit,
	// by reason (the Refused* constants).
	Refused map[string]uint64
	// Expired counts streams ended by a phase deadline, by phase
	// (awaiting_request_headers, buffering_request_body,
	// awaiting_response_headers, streaming_response_body).
	Expired map[string]uint64
	// ServedMismatch counts response phases that named a served endpoint
	// the stream was not routed to (ignored).
	ServedMismatch uint64
}

// counters are Stats' counters, updated without locks.
type counters struct {
	streams        atomic.Int64
	refused        [len(refusedReasons)]atomic.Uint64
	expired        [done]atomic.Uint64 // by phase, done excluded
	servedMismatch atomic.Uint64
}

func (c *counters) refuse(reason string) {
	for i, r := range refusedReasons {
		if r == reason {
			c.refused[i].Add(1)
			return
		}
	}
}

// Stats returns the current gauges and counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Streams: s.counters.streams.Load(), BufferedBytes: s.budget.used.Load(), BufferLimit: s.budget.limit,
		Refused: make(map[string]uint64, len(refusedReasons)), Expired: make(map[string]uint64, int(done)),
		ServedMismatch: s.counters.servedMismatch.Load(),
	}
	for i, r := range refusedReasons {
		st.Refused[r] = s.counters.refused[i].Load()
	}
	for p := range done {
		st.Expired[p.metricName()] = s.counters.expired[p].Load()
	}
	return st
}
