package scoring

import (
	"hash/maphash"
	"sync"

	"github.com/headroom-dev/headroom/picker/store"
)

// Prefix-affinity limits.
const (
	// MaxPrefixBlocks bounds PrefixConfig.MaxBlocks (the hashes of one
	// request live on the stack).
	MaxPrefixBlocks = 128
	// prefixWays is how many recent endpoints one block remembers.
	prefixWays = 4
)

// PrefixConfig sizes the approximate prefix-cache affinity.
type PrefixConfig struct {
	// BlockSize is the bytes of prompt per hashed block.
	BlockSize int `json:"blockSize"`
	// MaxBlocks is how many leading blocks are hashed (at most
	// MaxPrefixBlocks).
	MaxBlocks int `json:"maxBlocks"`
	// Capacity is how many block hashes the LRU keeps (memory is about
	// 150 bytes each).
	Capacity int `json:"capacity"`
}

// PrefixScorer is an approximate prefix-cache affinity: the prompt's
// leading blocks are hashed as a chain (each hash covers the model, the
// adapter and everything before it), and a bounded LRU remembers which
// endpoints were recently sent each chain hash. An endpoint scores the
// fraction of the prompt's blocks it was recently sent, counted from the
// start. It is NOT the servers' cache: an entry may have been evicted
// there, and what another picker replica sent is not seen.
type PrefixScorer struct {
	cfg  PrefixConfig
	seed maphash.Seed

	mu    sync.Mutex
	m     map[uint64]*prefixNode
	head  prefixNode // sentinel of the LRU list, most recent next
	nodes int
}

type prefixNode struct {
	hash       uint64
	prev, next *prefixNode
	addrs      [prefixWays]string // most recent first
}

// NewPrefixScorer returns an empty scorer.
func NewPrefixScorer(cfg PrefixConfig) *PrefixScorer {
	cfg.BlockSize = max(cfg.BlockSize, 1)
	cfg.MaxBlocks = min(max(cfg.MaxBlocks, 1), MaxPrefixBlocks)
	cfg.Capacity = max(cfg.Capacity, 1)
	p := &PrefixScorer{cfg: cfg, seed: maphash.MakeSeed(), m: make(map[uint64]*prefixNode)}
	p.head.prev, p.head.next = &p.head, &p.head
	return p
}

// Name implements [Scorer].
func (*PrefixScorer) Name() string { return "prefix-cache" }

// hashes fills buf with the chain hashes of r's full leading blocks.
func (p *PrefixScorer) hashes(r *Request, buf *[MaxPrefixBlocks]uint64) []uint64 {
	var h maphash.Hash
	h.SetSeed(p.seed)
	h.WriteString(r.Model)
	h.WriteByte(0)
	h.WriteString(r.LoRA)
	out := buf[:0]
	b := r.PromptPrefix
	for len(b) >= p.cfg.BlockSize && len(out) < p.cfg.MaxBlocks {
		h.Write(b[:p.cfg.BlockSize])
		b = b[p.cfg.BlockSize:]
		out = append(out, h.Sum64())
	}
	return out
}

type prefixMatch struct {
	addr   string
	blocks int
}

// Score implements [Scorer].
func (p *PrefixScorer) Score(r *Request, eps []*store.Endpoint, scores []float64) {
	clear(scores[:len(eps)])
	var buf [MaxPrefixBlocks]uint64
	hs := p.hashes(r, &buf)
	var mbuf [prefixWays]prefixMatch
	matches := p.match(hs, mbuf[:0])
	if len(matches) == 0 {
		return
	}
	for i, ep := range eps {
		for _, m := range matches {
			if m.addr == ep.Address {
				scores[i] = float64(m.blocks) / float64(len(hs))
				break
			}
		}
	}
}

// match returns the endpoints sent the first block of hs, each with the
// number of leading blocks it was sent.
func (p *PrefixScorer) match(hs []uint64, out []prefixMatch) []prefixMatch {
	if len(hs) == 0 {
		return out
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.m[hs[0]]
	if n == nil {
		return out
	}
	for _, a := range n.addrs {
		if a != "" {
			out = append(out, prefixMatch{a, 1})
		}
	}
	for i := 1; i < len(hs); i++ {
		n := p.m[hs[i]]
		if n == nil {
			break
		}
		advanced := false
		for j := range out {
			if out[j].blocks == i && n.has(out[j].addr) {
				out[j].blocks++
				advanced = true
			}
		}
		if !advanced {
			break
		}
	}
	return out
}

func (n *prefixNode) has(addr string) bool {
	for _, a := range n.addrs {
		if a == addr {
			return true
		}
	}
	return false
}

// RecordPick remembers that r's prefix was sent to ep.
func (p *PrefixScorer) RecordPick(r *Request, ep *store.Endpoint) {
	var buf [MaxPrefixBlocks]uint64
	hs := p.hashes(r, &buf)
	if len(hs) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range hs {
		p.touch(h).remember(ep.Address)
	}
}

// touch returns h's node, created or moved to the front of the LRU,
// evicting the least recent when full. p.mu is held.
func (p *PrefixScorer) touch(h uint64) *prefixNode {
	n := p.m[h]
	if n != nil {
		n.prev.next, n.next.prev = n.next, n.prev
	} else {
		if p.nodes >= p.cfg.Capacity {
			old := p.head.prev
			old.prev.next, p.head.prev = &p.head, old.prev
			delete(p.m, old.hash)
			p.nodes--
			*old = prefixNode{hash: h} // reuse the evicted node
			n = old
		} else {
			n = &prefixNode{hash: h}
		}
		p.m[h] = n
		p.nodes++
	}
	n.prev, n.next = &p.head, p.head.next
	p.head.next.prev = n
	p.head.next = n
	return n
}

// remember puts addr first among the node's endpoints.
func (n *prefixNode) remember(addr string) {
	i := 0
	for i < prefixWays-1 && n.addrs[i] != addr {
		i++
	}
	copy(n.addrs[1:i+1], n.addrs[:i])
	n.addrs[0] = addr
}

// Len is the number of block hashes held.
func (p *PrefixScorer) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nodes
}
