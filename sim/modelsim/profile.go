package modelsim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Profile is the speed of one GPU model serving one LLM.
type Profile struct {
	Name                   string
	PrefillTokensPerSecond float64       // prompt tokens processed per second
	DecodeStepBase         time.Duration // one decode iteration with one sequence
	DecodeStepPerSeq       time.Duration // added to an iteration per running sequence
	KVCacheTokens          int           // KV-cache capacity in tokens
	MaxRunning             int           // most sequences in a batch (vLLM max_num_seqs)
	MaxBatchedTokens       int           // most prompt tokens prefilled in one iteration (chunked prefill)
}

// profiles are Llama-3-8B-class serving on three GPUs, scaled down so that
// a 24-server pool fits on two CPU cores: 8 sequences a batch instead of
// hundreds, and decode steps about three times slower than the real GPU's.
// The ratios between the GPUs follow their data sheets: the A100 has about
// 1/1.7 of the H100's dense FP16 compute and of its memory bandwidth; the
// H200 has the H100's compute with 1.4× its bandwidth (decode is
// bandwidth-bound) and 1.76× its memory (more KV cache). docs/simulator.md
// explains every number.
var profiles = map[string]Profile{
	"h100": {
		Name: "h100", PrefillTokensPerSecond: 12000,
		DecodeStepBase: 25 * time.Millisecond, DecodeStepPerSeq: time.Millisecond,
		KVCacheTokens: 16384, MaxRunning: 8, MaxBatchedTokens: 2048,
	},
	"a100": {
		Name: "a100", PrefillTokensPerSecond: 7000,
		DecodeStepBase: 42500 * time.Microsecond, DecodeStepPerSeq: 1700 * time.Microsecond,
		KVCacheTokens: 12288, MaxRunning: 8, MaxBatchedTokens: 2048,
	},
	// slow is the heterogeneous pool's slow class: an H100 pod 2.5× slower
	// per token, prefill and decode, with half the batch slots and half
	// the KV cache (an older or shared GPU under a smaller serving
	// configuration).
	"slow": {
		Name: "slow", PrefillTokensPerSecond: 4800,
		DecodeStepBase: 62500 * time.Microsecond, DecodeStepPerSeq: 2500 * time.Microsecond,
		KVCacheTokens: 8192, MaxRunning: 4, MaxBatchedTokens: 2048,
	},
	"h200": {
		Name: "h200", PrefillTokensPerSecond: 13000,
		DecodeStepBase: 18 * time.Millisecond, DecodeStepPerSeq: 700 * time.Microsecond,
		KVCacheTokens: 24576, MaxRunning: 8, MaxBatchedTokens: 2048,
	},
}

// ErrUnknownProfile is returned by LookupProfile for a name it lacks.
var ErrUnknownProfile = errors.New("unknown model-server profile")

// ProfileNames lists the built-in profiles, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LookupProfile returns a built-in profile by name (case-insensitive).
func LookupProfile(name string) (Profile, error) {
	p, ok := profiles[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Profile{}, fmt.Errorf("%w %q (have %s)", ErrUnknownProfile, name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// Validate reports every field that cannot drive the model.
func (p Profile) Validate() error {
	var errs []error
	if !(p.PrefillTokensPerSecond > 0) || math.IsInf(p.PrefillTokensPerSecond, 0) {
		errs = append(errs, fmt.Errorf("prefill rate %v tokens/s is not a positive number", p.PrefillTokensPerSecond))
	}
	if p.DecodeStepBase <= 0 {
		errs = append(errs, fmt.Errorf("decode step base %s is not positive", p.DecodeStepBase))
	}
	if p.DecodeStepPerSeq < 0 {
		errs = append(errs, fmt.Errorf("decode step per sequence %s is negative", p.DecodeStepPerSeq))
	}
	if p.KVCacheTokens < 2 {
		errs = append(errs, fmt.Errorf("KV cache of %d tokens is below 2", p.KVCacheTokens))
	}
	if p.MaxRunning < 1 {
		errs = append(errs, fmt.Errorf("max running %d is below 1", p.MaxRunning))
	}
	if p.MaxBatchedTokens < 1 {
		errs = append(errs, fmt.Errorf("max batched tokens %d is below 1", p.MaxBatchedTokens))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("profile %q: %w", p.Name, err)
	}
	return nil
}

// iterationTime is the nominal time of one iteration that decodes one
// token for each of decoding sequences and prefills prefill prompt tokens.
// DecodeStepBase is paid by every iteration (the fixed cost of a forward
// pass: reading the weights); DecodeStepPerSeq only per decoding sequence.
func (p Profile) iterationTime(decoding, prefill int) time.Duration {
	d := p.DecodeStepBase + time.Duration(decoding)*p.DecodeStepPerSeq
	return d + time.Duration(float64(prefill)/p.PrefillTokensPerSecond*float64(time.Second))
}

// Capacity is the steady-state completed requests per second of one server
// at full batch for the given mean prompt and output token counts. With B
// sequences in the batch, P prompt and O output tokens a request, every
// slot runs one request per O iterations (the iteration that finishes its
// prefill yields its first token, O−1 decode iterations the rest), so over
// O iterations the server prefills B prompts and decodes B·(O−1) tokens:
//
//	Capacity = B / (O·base + B·(O−1)·perSeq + B·P/prefillRate)
//
// B is MaxRunning, or fewer when the KV cache cannot hold that many
// requests at their mean footprint of P + O/2 tokens. The formula ignores
// the extra iteration a prompt longer than MaxBatchedTokens spends being
// prefilled in chunks, and preemptions (see docs/simulator.md).
func (p Profile) Capacity(meanPrompt, meanOutput float64) float64 {
	if p.Validate() != nil {
		return 0
	}
	P := math.Max(meanPrompt, 0)
	O := math.Max(meanOutput, 1)
	B := math.Min(float64(p.MaxRunning), float64(p.KVCacheTokens)/(P+O/2))
	B = math.Max(B, 1)
	base, perSeq := p.DecodeStepBase.Seconds(), p.DecodeStepPerSeq.Seconds()
	return B / (O*base + B*(O-1)*perSeq + B*P/p.PrefillTokensPerSecond)
}
