package snapshot

import "time"

// ModelServer is the latest reading of one pod's (or standalone
// endpoint's) model-server metrics. The model-server source scrapes on its
// own, faster clock; the copy in a snapshot is the newest one at the tick.
type ModelServer struct {
	// Engine is vllm, sglang, trtllm or triton.
	Engine string
	// URL is the metrics URL scraped.
	URL string
	// SampleTime is when the last successful scrape completed (zero: never).
	SampleTime time.Time
	// StaleSince is when scrapes started failing (zero: fresh).
	StaleSince time.Time
	// Err is the last scrape's error; empty on success.
	Err string
	// Stats are the values of the last successful scrape.
	Stats ModelServerStats
	// Dropped counts, by reason, the impossible values the source left
	// out of this server's scrapes since it became a target (a negative
	// queue, a ratio above 1, a family with too many series…). Shared
	// between readings and never modified; nil when none.
	Dropped map[string]uint64
}

// Stale reports whether the last scrape failed.
func (m *ModelServer) Stale() bool { return !m.StaleSince.IsZero() }

// ModelServerStats are the load signals routing uses. A field the engine
// does not export is left at its zero value with its Has* bit unset.
type ModelServerStats struct {
	// Waiting and Running are requests queued and in the running batch.
	Waiting, Running float64
	// KVCacheUsage is the fraction of KV-cache blocks in use, 0–1.
	KVCacheUsage    float64
	HasKVCacheUsage bool
	// LoRA is the adapter state (vLLM); nil when the engine has none.
	LoRA *LoRAState
	// Latency is the server's own time to first token and time per
	// output token, as the cumulative sum and count of its histograms;
	// nil when it exports none. The picker turns successive readings into
	// each endpoint's recent speed.
	Latency *LatencyTotals
	// GenerationTokens is the output tokens generated since the server
	// started, summed over its series (vLLM and SGLang export it);
	// HasGenerationTokens is unset where the engine does not.
	GenerationTokens    float64
	HasGenerationTokens bool
}

// LatencyTotals are cumulative histogram sums (seconds) and counts.
type LatencyTotals struct {
	TTFTSum, TTFTCount float64
	TPOTSum, TPOTCount float64
	// The stages of a request, where the server exports them (vLLM):
	// time queued, time from scheduling to the first token (prefill),
	// time from scheduling to the end (prefill + decode: the time a
	// request holds a batch slot), and the prompt's tokens. Zero when
	// absent.
	QueueSum, QueueCount               float64
	PrefillSum, PrefillCount           float64
	InferenceSum, InferenceCount       float64
	PromptTokensSum, PromptTokensCount float64
}

// LoRAState lists the LoRA adapters a server has loaded.
type LoRAState struct {
	// Running and Waiting name the adapters of running and waiting
	// requests.
	Running, Waiting []string
	// MaxAdapters is how many adapters fit at once.
	MaxAdapters int
}
