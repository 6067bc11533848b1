package auth

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/peer"
)

// maxPeers bounds the peers whose review budgets are remembered.
const maxPeers = 4096

// peerLimits gives each peer address (IP, without the port) its own
// budget of TokenReviews: an agent needs one per new token or after its
// cached result expires, so a peer spending more is sending made-up
// tokens, and is refused before it takes a review slot from the others.
type peerLimits struct {
	every rate.Limit
	burst int

	mu    sync.Mutex
	peers map[string]*peerBudget
}

type peerBudget struct {
	lim  *rate.Limiter
	last time.Time
}

func newPeerLimits(perSecond float64, burst int) *peerLimits {
	return &peerLimits{every: rate.Limit(perSecond), burst: burst, peers: map[string]*peerBudget{}}
}

// allow spends one review of the peer's budget, reporting whether it had
// one left.
func (p *peerLimits) allow(peerAddr string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.peers[peerAddr]
	if b == nil {
		if len(p.peers) >= maxPeers {
			p.evictLocked(now)
		}
		b = &peerBudget{lim: rate.NewLimiter(p.every, p.burst)}
		p.peers[peerAddr] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}

// evictLocked forgets peers whose budget is whole again (idle long enough
// to refill), or else the one idle longest.
func (p *peerLimits) evictLocked(now time.Time) {
	var oldest string
	var at time.Time
	for addr, b := range p.peers {
		if b.lim.TokensAt(now) >= float64(p.burst) {
			delete(p.peers, addr)
			continue
		}
		if oldest == "" || b.last.Before(at) {
			oldest, at = addr, b.last
		}
	}
	if len(p.peers) >= maxPeers {
		delete(p.peers, oldest)
	}
}

// peerHost is the IP of the stream's peer, or "" when there is none.
func peerHost(ctx context.Context) string {
	pr, ok := peer.FromContext(ctx)
	if !ok || pr.Addr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(pr.Addr.String())
	if err != nil {
		return pr.Addr.String()
	}
	return host
}
