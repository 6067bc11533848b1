package scoring

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// t0 is the tests' report sample time; the fake clock starts just after.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeClock is a manual clock for the tracker.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }

func ptr[T any](v T) *T { return &v }

// ep builds a healthy endpoint with one H100-sized GPU, sampled at t0.
func ep(i int) *store.Endpoint {
	ip := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
	return &store.Endpoint{
		Address: ip + ":8000", IP: ip, Port: 8000, Namespace: "ns", Name: fmt.Sprintf("pod-%d", i),
		Node: fmt.Sprintf("node-%d", i/8),
		Pod: &telemetryv1.Pod{Ip: ip, ModelServer: &telemetryv1.ModelServer{
			Engine: "vllm", SampleTimeUnixNano: uint64(t0.UnixNano()), KvCacheUsage: ptr(0.2),
		}},
		GPUs: []*telemetryv1.GPU{{
			Uuid: fmt.Sprintf("GPU-%d", i), Health: &telemetryv1.GPUHealth{},
			MemoryTotalBytes: 80 << 30, MemoryUsedBytes: 72 << 30, MemoryFreeBytes: 8 << 30,
			SmActive: ptr(0.5),
		}},
		ReportTime: t0.Add(50 * time.Millisecond), ReportSample: t0,
	}
}

// eps builds n endpoints, applying each mutator to endpoint i.
func eps(n int, mut ...func(i int, e *store.Endpoint)) []*store.Endpoint {
	out := make([]*store.Endpoint, n)
	for i := range out {
		out[i] = ep(i)
		for _, m := range mut {
			m(i, out[i])
		}
	}
	return out
}

func view(e []*store.Endpoint) *store.View { return &store.View{Endpoints: e, Built: t0} }

// seeded is a deterministic tie-breaking source.
func seeded(seed uint64) rand.Source { return rand.NewPCG(seed, seed^0x9e3779b97f4a7c15) }

// score runs one scorer over e and returns its scores.
func score(s Scorer, r *Request, e []*store.Endpoint) []float64 {
	out := make([]float64, len(e))
	for i := range out {
		out[i] = -1 // a scorer must fill every slot
	}
	s.Score(r, e, out)
	return out
}
