package modelsim

import (
	"container/list"
	"hash/fnv"
)

// blockTokens is the prefix cache's block size in tokens (vLLM's default
// of 16), blockBytes the same in prompt bytes (the tokenizer counts one
// token per four bytes).
const (
	blockTokens = 16
	blockBytes  = 4 * blockTokens
)

// promptBlocks are the chained hashes of the prompt's full blocks: block
// i's hash covers every byte up to its end, so two prompts share block i
// only when they share their first i+1 blocks, as in vLLM's automatic
// prefix caching. text is the prompt as the request carried it (the raw
// JSON of its prompt or messages): a prompt that extends another carries
// it as a prefix there too.
func promptBlocks(text []byte) []uint64 {
	n := len(text) / blockBytes
	if n == 0 {
		return nil
	}
	out := make([]uint64, 0, n)
	h := fnv.New64a()
	for i := range n {
		_, _ = h.Write(text[i*blockBytes : (i+1)*blockBytes])
		out = append(out, h.Sum64())
	}
	return out
}

// prefixCache is the set of prompt blocks whose KV the server still holds,
// least recently used first out: vLLM keeps a finished request's blocks
// cached until new allocations need the room. Its capacity is the KV
// cache's, in blocks. Guarded by Server.mu.
type prefixCache struct {
	capacity int
	lru      *list.List // of uint64, most recent at the front
	blocks   map[uint64]*list.Element
}

func newPrefixCache(kvTokens int) *prefixCache {
	return &prefixCache{capacity: max(kvTokens/blockTokens, 1), lru: list.New(), blocks: map[uint64]*list.Element{}}
}

// match is how many leading blocks of bs are cached; it marks them used.
func (c *prefixCache) match(bs []uint64) int {
	for i, b := range bs {
		e, ok := c.blocks[b]
		if !ok {
			return i
		}
		c.lru.MoveToFront(e)
	}
	return len(bs)
}

// add caches bs, evicting the least recently used blocks beyond capacity.
func (c *prefixCache) add(bs []uint64) {
	for _, b := range bs {
		if e, ok := c.blocks[b]; ok {
			c.lru.MoveToFront(e)
			continue
		}
		c.blocks[b] = c.lru.PushFront(b)
		if c.lru.Len() > c.capacity {
			old := c.lru.Back()
			c.lru.Remove(old)
			delete(c.blocks, old.Value.(uint64))
		}
	}
}

// cachedTokens is how many of a request's prompt tokens need no prefill:
// its cached leading blocks, leaving at least the last prompt token to
// compute (the first output token needs it).
func cachedTokens(blocks, promptTokens int) int {
	return min(blocks*blockTokens, promptTokens-1)
}
