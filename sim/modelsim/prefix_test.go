package modelsim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPromptBlocksChain(t *testing.T) {
	t.Parallel()
	a := promptBlocks([]byte(strings.Repeat("x", 3*blockBytes+10)))
	b := promptBlocks([]byte(strings.Repeat("x", 2*blockBytes) + strings.Repeat("y", blockBytes)))
	if len(a) != 3 || len(b) != 3 {
		t.Fatalf("%d and %d blocks, want 3 each (a partial block is not cached)", len(a), len(b))
	}
	if a[0] != b[0] || a[1] != b[1] || a[2] == b[2] {
		t.Errorf("blocks %x and %x: want the first two shared, the third not", a, b)
	}
	// The same block after a different prefix hashes differently.
	c := promptBlocks([]byte(strings.Repeat("y", blockBytes) + strings.Repeat("x", blockBytes)))
	if c[1] == a[1] {
		t.Error("block hashes do not chain: a block matches after a different prefix")
	}
	if promptBlocks([]byte("short")) != nil {
		t.Error("a prompt shorter than a block has blocks")
	}
}

func TestPrefixCacheEvictsLeastRecent(t *testing.T) {
	t.Parallel()
	c := newPrefixCache(3 * blockTokens)
	c.add([]uint64{1, 2, 3})
	if got := c.match([]uint64{1, 2, 3, 4}); got != 3 {
		t.Fatalf("match = %d, want 3", got)
	}
	c.match([]uint64{1}) // 1 most recent, then 3, 2
	c.add([]uint64{5})   // evicts 2
	if got := c.match([]uint64{1, 2}); got != 1 {
		t.Errorf("after eviction match = %d, want 1 (block 2 gone)", got)
	}
	if got := c.match([]uint64{5}); got != 1 {
		t.Errorf("the new block is not cached")
	}
	if cachedTokens(10, 100) != 99 || cachedTokens(2, 100) != 32 {
		t.Errorf("cachedTokens: %d, %d", cachedTokens(10, 100), cachedTokens(2, 100))
	}
}

// TestRepeatedPromptSkipsPrefill sends the same long prompt twice on a
// server whose prefill is slow: the second finds it cached, its first
// token comes without the prefill, and the prefix-cache counters say so.
func TestRepeatedPromptSkipsPrefill(t *testing.T) {
	t.Parallel()
	ts := start(t, func(o *Options) { o.Profile.PrefillTokensPerSecond = 4000 }, true) // 2,000 tokens: 0.5 s
	body := map[string]any{"model": "m", "prompt": promptOf(2000), "max_tokens": 2, "stream": true}
	first, err := stream(context.Background(), ts.URL+"/v1/completions", body)
	if err != nil {
		t.Fatal(err)
	}
	second, err := stream(context.Background(), ts.URL+"/v1/completions", body)
	if err != nil {
		t.Fatal(err)
	}
	if first.ttft() < 400*time.Millisecond || second.ttft() > first.ttft()/4 {
		t.Errorf("TTFT %s then %s: want the repeat well under a quarter of a 0.5 s prefill", first.ttft(), second.ttft())
	}
	// 2,000 tokens queried twice. The prompt's JSON string is 8,002
	// bytes, 125 full blocks: the second request finds them all cached
	// but still computes its last prompt token.
	queries := testutil.ToFloat64(ts.metrics.prefixQueries)
	hits := testutil.ToFloat64(ts.metrics.prefixHits)
	if queries != 4000 || hits != 1999 {
		t.Errorf("prefix cache queries %v, hits %v: want 4000 and 1999", queries, hits)
	}
}
