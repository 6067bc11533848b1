package loadgen

import (
	"errors"
	"math/rand/v2"
	"strings"
)

// Conversations shapes a shared-prefix workload, the kind a prefix-cache
// scorer earns its weight on: every request belongs to a conversation
// that opens with one of SystemPrompts fixed system prompts of
// SystemTokens tokens, and a conversation goes on for up to Turns
// requests, each resending the whole history (the previous prompt and an
// answer of the previous output's length) before a new user message drawn
// from the Mix. The zero value is off: independent prompts.
type Conversations struct {
	SystemPrompts, SystemTokens, Turns int
	// MaxPromptTokens ends a conversation whose next prompt would be
	// longer (default 4096).
	MaxPromptTokens int
}

// On reports whether the workload is shared-prefix.
func (c Conversations) On() bool { return c.SystemPrompts > 0 }

// Validate checks the shape.
func (c Conversations) Validate() error {
	if !c.On() {
		return nil
	}
	if c.SystemTokens < 1 || c.Turns < 1 || c.MaxPromptTokens < 0 {
		return errors.New("conversations: want at least one system token and one turn, and a non-negative prompt limit")
	}
	return nil
}

// conversation is one open conversation: its history as sent so far.
type conversation struct {
	history  strings.Builder
	tokens   int
	turnsYet int
}

// conversations is the generator's state of the open conversations.
type conversations struct {
	c       Conversations
	mix     Mix
	systems []string
	open    []*conversation
}

func newConversations(c Conversations, mix Mix, seed uint64) *conversations {
	if c.MaxPromptTokens == 0 {
		c.MaxPromptTokens = 4096
	}
	cs := &conversations{c: c, mix: mix}
	for i := range c.SystemPrompts {
		cs.systems = append(cs.systems, Prompt(rand.New(rand.NewPCG(seed, uint64(i)+0x737973)), c.SystemTokens))
	}
	return cs
}

// next draws the next request: its prompt, its length in tokens and the
// output tokens to ask for. With Turns t, a request continues an open
// conversation with probability (t−1)/t, so that conversations last t
// requests on average.
func (cs *conversations) next(rng *rand.Rand) (prompt string, tokens, output int) {
	user, output := cs.mix.Sample(rng)
	var cv *conversation
	if len(cs.open) > 0 && rng.IntN(cs.c.Turns) > 0 {
		i := rng.IntN(len(cs.open))
		cv = cs.open[i]
		if cv.tokens+user > cs.c.MaxPromptTokens || cv.turnsYet >= cs.c.Turns {
			cs.open = append(cs.open[:i], cs.open[i+1:]...)
			cv = nil
		}
	}
	if cv == nil {
		cv = &conversation{}
		cv.history.WriteString(cs.systems[rng.IntN(len(cs.systems))])
		cv.tokens = cs.c.SystemTokens
		cs.open = append(cs.open, cv)
		if len(cs.open) > 64 {
			cs.open = cs.open[1:] // the oldest conversations end
		}
	}
	cv.history.WriteString(Prompt(rng, user))
	prompt, tokens = cv.history.String(), cv.tokens+user
	// The answer joins the history the next turn resends.
	cv.history.WriteString(Prompt(rng, output))
	cv.tokens = tokens + output
	cv.turnsYet++
	return prompt, tokens, output
}

// Means estimates the mean prompt and output lengths of the workload by
// drawing from it.
func (c Conversations) Means(mix Mix) (prompt, output float64) {
	if !c.On() {
		return mix.Means()
	}
	cs := newConversations(c, mix, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 5000
	var p, o int
	for range n {
		_, t, out := cs.next(rng)
		p += t
		o += out
	}
	return float64(p) / n, float64(o) / n
}
