// Package scoring decides which endpoint of an InferencePool serves a
// request: filters drop endpoints that must not take it, weighted scorers
// rank the rest, and a [Picker] returns the best few, the first as the
// destination and the others as the gateway's fallbacks.
//
// Every filter and scorer sits behind a one-method interface and is tested
// alone. Scorers fill a score in 0..1 per endpoint (higher is better); the
// picker sums them by weight, breaks ties at random, and reports each
// scorer's contribution to the winner so the caller can export it with a
// label set bounded by the scorer names.
//
// The built-in scorers read the model server's queue and KV cache (the
// load signal for servers that preallocate VRAM, like vLLM), the GPUs'
// VRAM headroom, SM activity and throttling, LoRA adapter affinity, an
// approximate prefix-cache affinity, each endpoint's observed speed, and
// the requests this replica has sent since the endpoint's last report
// (optimistic accounting, so a burst between two reports does not herd
// onto the emptiest-looking pod).
//
// Nothing here is a package global: state (in-flight counts, speed
// averages, prefix affinity, Xid history) lives in the values [New]
// builds, and every one of them is safe for concurrent use.
package scoring

import (
	"errors"

	"github.com/headroom-dev/headroom/picker/subset"

	"github.com/headroom-dev/headroom/picker/store"
)

// Errors of [Picker.Pick]; test them with errors.Is.
var (
	// ErrNoEndpoint: nothing is eligible (empty pool, empty subset, or no
	// endpoint in the subset). The gateway answers 503.
	ErrNoEndpoint = errors.New("scoring: no eligible endpoint")
	// ErrShed: the request is sheddable and every eligible endpoint is
	// saturated. The gateway answers 429.
	ErrShed = errors.New("scoring: pool saturated, sheddable request shed")
)

// Request is what the picker knows about one inference request.
type Request struct {
	// Model is the model the request names (the base model or a LoRA
	// adapter).
	Model string
	// LoRA is the adapter name when Model names a LoRA adapter.
	LoRA string
	// PromptPrefix is the first few KB of the prompt, for prefix affinity.
	PromptPrefix []byte
	// PromptBytes is the whole request body's length, from which the
	// expected-wait scorer estimates the prompt's tokens (0: the prefix's
	// length).
	PromptBytes int
	// Sheddable requests may be refused when the pool is saturated.
	Sheddable bool
	// Subset is the gateway's subset hint: nil allows all, an empty one
	// allows none. Entries match by IP only, as the reference endpoint
	// picker does.
	Subset *subset.Hosts
}

// Filter drops endpoints that must not serve r. It appends the kept
// endpoints of in to out[:0] and returns it; in and out never overlap.
type Filter interface {
	Name() string
	Filter(r *Request, in []*store.Endpoint, out []*store.Endpoint) []*store.Endpoint
}

// Scorer rates each endpoint of eps for r, filling scores[i] (len(eps))
// with a value in 0..1, higher is better.
type Scorer interface {
	Name() string
	Score(r *Request, eps []*store.Endpoint, scores []float64)
}

// clamp01 bounds a score to 0..1, mapping NaN to 0.
func clamp01(x float64) float64 {
	switch {
	case x > 1:
		return 1
	case x >= 0:
		return x
	default: // negative or NaN
		return 0
	}
}
