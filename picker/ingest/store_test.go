package ingest

import (
	"testing"
	"time"
)

func TestStoreOrderAndStaleness(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	s := NewStore(3, func() time.Time { return now })
	r1, r2 := report("n", 1), report("n", 2)
	if !s.Put(r2) || s.Put(r1) {
		t.Fatal("an older sequence of the same agent replaced a newer one")
	}
	restarted := report("n", 1)
	restarted.AgentInstance = "b"
	restarted.SampleTimeUnixNano = r2.SampleTimeUnixNano + 1
	if !s.Put(restarted) {
		t.Fatal("a restarted agent's newer report was dropped")
	}
	v, _ := s.Node("n")
	if v.Stale || v.TTL != 3*time.Second || v.Connected {
		t.Fatalf("fresh view %+v", v)
	}
	now = now.Add(3 * time.Second)
	if v, _ = s.Node("n"); v.Stale {
		t.Fatal("stale at exactly the TTL")
	}
	now = now.Add(time.Millisecond)
	if v, _ = s.Node("n"); !v.Stale || v.Age != 3*time.Second+time.Millisecond {
		t.Fatalf("view past the TTL %+v", v)
	}
	detach := s.attach("n")
	if v, _ = s.Node("n"); !v.Connected {
		t.Fatal("not connected with a stream attached")
	}
	detach()
	if nodes := s.Nodes(); len(nodes) != 1 || nodes[0].Connected {
		t.Fatalf("nodes %+v", nodes)
	}
}

func TestStoreUnknownIntervalUsesDefault(t *testing.T) {
	t.Parallel()
	s := NewStore(3, nil)
	r := report("n", 1)
	r.IntervalNano = 0
	s.Put(r)
	if v, _ := s.Node("n"); v.TTL != 3*defaultInterval {
		t.Fatalf("TTL %v", v.TTL)
	}
}
