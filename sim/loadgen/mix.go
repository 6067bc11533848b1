// Package loadgen sends OpenAI-style completion requests to a gateway at a
// Poisson rate (or all at once, as a burst) with a ShareGPT-like mix of
// prompt and output lengths, and measures what a client sees: time to
// first token (TTFT), end-to-end latency, tokens and which server answered.
package loadgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Mix is the distribution of prompt and output lengths, in tokens: each is
// lognormal (median, sigma) clipped to [Min, Max], the long-tailed shape of
// chat logs such as ShareGPT.
type Mix struct {
	PromptMedian, PromptSigma float64
	PromptMin, PromptMax      int
	OutputMedian, OutputSigma float64
	OutputMin, OutputMax      int
}

// ShareGPT is a ShareGPT-like mix scaled to the simulated servers: prompts
// with a median of 128 tokens (mean about 210), outputs with a median of 96
// (mean about 130). Published ShareGPT traces have longer outputs (means
// of 200–340 tokens); the outputs are shortened so that a 24-GPU pool at
// full load stays within two CPU cores. The shape, not the scale, is what
// routing quality depends on.
func ShareGPT() Mix {
	return Mix{
		PromptMedian: 128, PromptSigma: 1.0, PromptMin: 4, PromptMax: 2048,
		OutputMedian: 96, OutputSigma: 0.8, OutputMin: 4, OutputMax: 512,
	}
}

// Validate checks the mix.
func (m Mix) Validate() error {
	if m.PromptMedian <= 0 || m.OutputMedian <= 0 || m.PromptSigma < 0 || m.OutputSigma < 0 {
		return fmt.Errorf("mix: medians must be positive and sigmas non-negative")
	}
	if m.PromptMin < 1 || m.PromptMax < m.PromptMin || m.OutputMin < 1 || m.OutputMax < m.OutputMin {
		return fmt.Errorf("mix: want 1 <= min <= max for prompts and outputs")
	}
	return nil
}

// Sample draws one request's prompt and output lengths.
func (m Mix) Sample(rng *rand.Rand) (prompt, output int) {
	return lognormal(rng, m.PromptMedian, m.PromptSigma, m.PromptMin, m.PromptMax),
		lognormal(rng, m.OutputMedian, m.OutputSigma, m.OutputMin, m.OutputMax)
}

// Means estimates the mean prompt and output lengths of the clipped mix
// by sampling (the clipping makes the closed form awkward).
func (m Mix) Means() (prompt, output float64) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	var p, o int
	for range n {
		a, b := m.Sample(rng)
		p += a
		o += b
	}
	return float64(p) / n, float64(o) / n
}

func lognormal(rng *rand.Rand, median, sigma float64, lo, hi int) int {
	v := int(math.Round(median * math.Exp(sigma*rng.NormFloat64())))
	return min(max(v, lo), hi)
}

// words is the filler prompts are made of: a three-letter word and a
// space, so that a prompt of n tokens is 4n bytes to sim/modelsim's
// tokenizer (one token per four bytes) and n words to tokenizers that split
// on words, such as llm-d-inference-sim's.
var words = []string{"gpu ", "kvc ", "ram ", "sms ", "pod ", "nod ", "msh ", "tok "}

// Prompt returns a prompt of exactly n tokens to the simulators' tokenizers.
func Prompt(rng *rand.Rand, n int) string {
	var b strings.Builder
	b.Grow(4 * n)
	for range n {
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}
