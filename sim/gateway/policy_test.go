package gateway

import (
	"net/http"
	"slices"
	"testing"
)

func TestRoundRobinCycles(t *testing.T) {
	t.Parallel()
	p := RoundRobin()
	eps := []string{"a:1", "b:1", "c:1", "d:1"}
	want := [][]string{{"a:1", "b:1", "c:1"}, {"b:1", "c:1", "d:1"}, {"c:1", "d:1", "a:1"}, {"d:1", "a:1", "b:1"}, {"a:1", "b:1", "c:1"}}
	for i, w := range want {
		if got := p.Pick(eps); !slices.Equal(got, w) {
			t.Errorf("pick %d: %v, want %v", i, got, w)
		}
	}
	if got := p.Pick([]string{"only:1"}); !slices.Equal(got, []string{"only:1"}) {
		t.Errorf("one endpoint: %v", got)
	}
}

func TestRandomIsSeededAndDistinct(t *testing.T) {
	t.Parallel()
	eps := []string{"a:1", "b:1", "c:1", "d:1"}
	p1, p2 := Random(7), Random(7)
	seen := map[string]int{}
	for i := range 200 {
		a, b := p1.Pick(eps), p2.Pick(eps)
		if !slices.Equal(a, b) {
			t.Fatalf("pick %d: %v and %v from the same seed", i, a, b)
		}
		if len(a) != 3 || a[0] == a[1] || a[1] == a[2] || a[0] == a[2] {
			t.Fatalf("pick %d: %v, want three distinct endpoints", i, a)
		}
		seen[a[0]]++
	}
	for _, e := range eps {
		if seen[e] < 25 {
			t.Errorf("%s chosen %d times of 200", e, seen[e])
		}
	}
}

func TestLeastRequestPrefersTheIdleEndpoint(t *testing.T) {
	t.Parallel()
	p := LeastRequest(3).(*leastRequest)
	eps := []string{"busy:1", "idle:1"}
	p.active["busy:1"] = 4 // requests in flight there
	idle := 0
	for range 200 {
		got := p.Pick(eps)
		if len(got) != 2 || got[0] == got[1] {
			t.Fatalf("pick %v: want the choice and the other as fallback", got)
		}
		if got[0] == "idle:1" {
			idle++
		}
		p.Done(got[0])
	}
	// Two samples with replacement: the busy endpoint wins only when both
	// samples are it (1 in 4).
	if idle < 130 || idle == 200 {
		t.Errorf("idle chosen %d of 200 times, want about 150", idle)
	}
	if p.active["busy:1"] != 4 || p.active["idle:1"] != 0 {
		t.Errorf("active %v after every pick was Done", p.active)
	}

	// Among three, the idle one is the choice or the first fallback.
	p.active["mid:1"] = 2
	for range 50 {
		got := p.Pick([]string{"busy:1", "mid:1", "idle:1"})
		if got[0] != "idle:1" && got[1] != "idle:1" {
			t.Fatalf("pick %v: the idle endpoint should come first or second", got)
		}
		p.Done(got[0])
	}
}

func TestBaselineThroughGateway(t *testing.T) {
	t.Parallel()
	a, b := startModel(t, nil), startModel(t, nil)
	lr := LeastRequest(1)
	for _, p := range []Policy{RoundRobin(), lr} {
		t.Run(p.Name(), func(t *testing.T) {
			g, url := startGateway(t, Options{Endpoints: []string{a.addr, b.addr}, Policy: p})
			c := client(t)
			for range 4 {
				if resp, got := post(t, c, url, chatBody(10, true)); resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, got)
				}
			}
			st := g.Stats()
			if st.Requests != 4 || st.PerEndpoint[a.addr].Routed+st.PerEndpoint[b.addr].Routed != 4 ||
				st.PerEndpoint[a.addr].InFlight != 0 || st.PerEndpoint[b.addr].InFlight != 0 {
				t.Errorf("stats %+v", st)
			}
			if p.Name() == "round-robin" && st.PerEndpoint[a.addr].Routed != 2 {
				t.Errorf("round robin routed %d and %d", st.PerEndpoint[a.addr].Routed, st.PerEndpoint[b.addr].Routed)
			}
		})
	}
	l := lr.(*leastRequest)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.active) != 0 {
		t.Errorf("least-request still counts %v: Done not called", l.active)
	}
}

func TestBaselineFallsBack(t *testing.T) {
	t.Parallel()
	m := startModel(t, nil)
	dead := deadAddr(t)
	g, url := startGateway(t, Options{Endpoints: []string{dead, m.addr}, Policy: RoundRobin()})
	for range 2 {
		if resp, got := post(t, client(t), url, chatBody(10, false)); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, got)
		}
	}
	if st := g.Stats(); st.Retried != 1 || st.PerEndpoint[m.addr].Routed != 2 || st.PerEndpoint[dead].InFlight != 0 {
		t.Errorf("stats %+v", st)
	}
}
