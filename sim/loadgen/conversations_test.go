package loadgen

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestConversationsSharePrefixes checks the shared-prefix workload: every
// prompt opens with one of the system prompts, a continued conversation
// resends its whole history, and no prompt passes the limit.
func TestConversationsSharePrefixes(t *testing.T) {
	t.Parallel()
	c := Conversations{SystemPrompts: 3, SystemTokens: 50, Turns: 4, MaxPromptTokens: 1000}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	cs := newConversations(c, ShareGPT(), 7)
	rng := rand.New(rand.NewPCG(1, 2))
	var prev []string
	systems, continued := map[string]bool{}, 0
	for range 400 {
		p, tokens, out := cs.next(rng)
		if len(p) != 4*tokens || out < 1 {
			t.Fatalf("prompt of %d bytes said to be %d tokens, output %d", len(p), tokens, out)
		}
		if tokens > c.MaxPromptTokens+ShareGPT().PromptMax {
			t.Fatalf("a prompt of %d tokens", tokens)
		}
		sys := p[:4*c.SystemTokens]
		systems[sys] = true
		for _, q := range prev {
			if len(q) > 4*c.SystemTokens && strings.HasPrefix(p, q) {
				continued++
				break
			}
		}
		prev = append(prev, p)
	}
	if len(systems) != 3 {
		t.Errorf("%d distinct system prompts, want 3", len(systems))
	}
	// With 4 turns on average, about 3 requests in 4 continue one.
	if continued < 200 {
		t.Errorf("only %d of 400 prompts continue an earlier one", continued)
	}
	pm, _ := c.Means(ShareGPT())
	if m, _ := ShareGPT().Means(); pm < m+float64(c.SystemTokens) {
		t.Errorf("mean prompt %.0f tokens: should exceed the mix's %.0f plus the system prompt", pm, m)
	}
}

func TestConversationsValidate(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]Conversations{
		"no system tokens": {SystemPrompts: 2, Turns: 2},
		"no turns":         {SystemPrompts: 2, SystemTokens: 10},
		"negative limit":   {SystemPrompts: 2, SystemTokens: 10, Turns: 2, MaxPromptTokens: -1},
	} {
		t.Run(name, func(t *testing.T) {
			if c.Validate() == nil {
				t.Errorf("%+v validated", c)
			}
		})
	}
	if (Conversations{}).Validate() != nil || (Conversations{}).On() {
		t.Error("the zero value should be off and valid")
	}
}

// TestAdapterShare checks that about the asked share of requests name an
// adapter, each adapter about as often as another.
func TestAdapterShare(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.URL, o.Adapters, o.AdapterShare = "http://127.0.0.1:1", []string{"a", "b"}, 0.5
	g, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	counts := map[string]int{}
	for range 2000 {
		counts[g.model(rng)]++
	}
	if counts["a"] < 400 || counts["b"] < 400 || counts[o.Model] < 900 {
		t.Errorf("models drawn: %v", counts)
	}
	o.AdapterShare, o.Adapters = 0.5, nil
	if _, err := New(o); err == nil {
		t.Error("an adapter share without adapters was accepted")
	}
}
