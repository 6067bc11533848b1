package scoring

import (
	"fmt"
	"maps"
	"testing"

	"github.com/headroom-dev/headroom/picker/store"
)

// BenchmarkPick picks for a pool of 1,000 and 10,000 endpoints with the
// default mix less the expected-wait scorer and with it at weight 2 (its
// cost, in one run): mixed loads, some requests in flight, a prompt
// prefix seen before, and each pick finished so in-flight stays bounded.
func BenchmarkPick(b *testing.B) {
	noWait, wait := DefaultConfig(), DefaultConfig()
	noWait.Scorers, wait.Scorers = maps.Clone(noWait.Scorers), maps.Clone(wait.Scorers)
	delete(noWait.Scorers, ScorerWait)
	wait.Scorers[ScorerWait] = 2
	cfgs := []struct {
		name string
		cfg  Config
	}{{"no-wait", noWait}, {"wait", wait}}
	for _, n := range []int{1000, 10000} {
		for _, c := range cfgs {
			b.Run(fmt.Sprintf("endpoints=%d/config=%s", n, c.name), func(b *testing.B) { benchPick(b, n, c.cfg) })
		}
	}
}

func benchPick(b *testing.B, n int, cfg Config) {
	e := eps(n, func(i int, e *store.Endpoint) {
		e.Pod.ModelServer.WaitingRequests = float64(i % 7)
		e.Pod.ModelServer.RunningRequests = float64(i % 5)
		e.Pod.ModelServer.KvCacheUsage = ptr(float64(i%10) / 10)
	})
	v := view(e)
	p, err := New(cfg, seeded(1), nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n / 10 {
		p.Tracker().Picked(e[i*7%n].Address)
		p.Observe(e[i*3%n].Address, 200e6, 20e6)
	}
	prompt := make([]byte, 4096)
	for i := range prompt {
		prompt[i] = byte('a' + i%26)
	}
	r := &Request{Model: "llama", PromptPrefix: prompt, PromptBytes: 8192}
	b.ReportAllocs()
	for b.Loop() {
		got, err := p.Pick(r, v, 3)
		if err != nil {
			b.Fatal(err)
		}
		p.Finished(got[0].Address)
	}
}
