package gateway

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// Policy picks endpoints in the gateway itself (baselines).
type Policy interface {
	Name() string
	// Pick returns endpoints to try in order (the first is the choice, the
	// rest fallbacks); eps is non-empty.
	Pick(eps []string) []string
	// Done is called once per picked request when its response ends (or
	// fails), with the first endpoint Pick returned.
	Done(endpoint string)
}

// maxPicks is the choice plus two fallbacks, as many as headroom-picker
// sends by default, so that every policy gets the same second chances.
const maxPicks = 3

// RoundRobin cycles through the endpoints; the fallbacks are the ones
// after the choice.
func RoundRobin() Policy { return &roundRobin{} }

type roundRobin struct{ next atomic.Uint64 }

func (*roundRobin) Name() string { return "round-robin" }
func (*roundRobin) Done(string)  {}

func (p *roundRobin) Pick(eps []string) []string {
	n := uint64(len(eps))
	i := p.next.Add(1) - 1
	out := make([]string, 0, min(len(eps), maxPicks))
	for k := range uint64(cap(out)) {
		out = append(out, eps[(i+k)%n])
	}
	return out
}

// Random picks uniformly at random; the fallbacks are other endpoints at
// random. The same seed gives the same sequence of picks.
func Random(seed uint64) Policy { return &random{rng: newRand(seed)} }

type random struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }

func (*random) Name() string { return "random" }
func (*random) Done(string)  {}

func (p *random) Pick(eps []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return pickDistinct(p.rng, eps, min(len(eps), maxPicks))
}

// pickDistinct draws up to k distinct endpoints at random, in draw order.
func pickDistinct(rng *rand.Rand, eps []string, k int) []string {
	out := make([]string, 0, k)
	for _, i := range rng.Perm(len(eps)) {
		if len(out) == k {
			break
		}
		if !contains(out, eps[i]) {
			out = append(out, eps[i])
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// LeastRequest is Envoy's LEAST_REQUEST load balancer with its defaults
// (all weights equal, choice_count 2): it samples two endpoints at random
// (with replacement, as Envoy does) and takes the one with fewer active
// requests, the first sampled on a tie. Active requests are counted here,
// from Pick to Done, as Envoy counts its own upstream requests. The
// fallbacks are the least loaded of the others.
func LeastRequest(seed uint64) Policy {
	return &leastRequest{rng: newRand(seed), active: map[string]int64{}}
}

type leastRequest struct {
	mu     sync.Mutex
	rng    *rand.Rand
	active map[string]int64
}

func (*leastRequest) Name() string { return "least-request" }

func (p *leastRequest) Pick(eps []string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	choice := eps[p.rng.IntN(len(eps))]
	if s := eps[p.rng.IntN(len(eps))]; p.active[s] < p.active[choice] {
		choice = s
	}
	p.active[choice]++
	out := make([]string, 1, min(len(eps), maxPicks))
	out[0] = choice
	for len(out) < cap(out) {
		best := ""
		for _, e := range eps {
			if !contains(out, e) && (best == "" || p.active[e] < p.active[best]) {
				best = e
			}
		}
		if best == "" {
			break
		}
		out = append(out, best)
	}
	return out
}

func (p *leastRequest) Done(endpoint string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active[endpoint]--; p.active[endpoint] <= 0 {
		delete(p.active, endpoint)
	}
}
