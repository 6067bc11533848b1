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

// A report stamped ahead of time holds the node at most one TTL against a
// restarted agent whose reports carry earlier sample times.
func TestStoreFutureStampGivesWayAfterTTL(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	s := NewStore(3, func() time.Time { return now })
	ahead := report("n", 1)
	ahead.AgentInstance, ahead.SampleTimeUnixNano = "forged", uint64(now.Add(25*time.Second).UnixNano())
	s.Put(ahead)
	real := report("n", 1)
	real.AgentInstance, real.SampleTimeUnixNano = "real", uint64(now.UnixNano())
	if s.Put(real) {
		t.Fatal("an older-stamped report of another instance replaced a fresh one")
	}
	now = now.Add(3*time.Second + time.Millisecond)
	if !s.Put(real) {
		t.Fatal("the held report is past its TTL but still wins")
	}
}

func TestStorePrune(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	s := NewStore(3, func() time.Time { return now })
	s.Put(report("gone", 1))
	s.Put(report("kept", 1))
	detach := s.attach("kept")
	defer detach()
	now = now.Add(time.Hour)
	if n := s.Prune(10 * time.Minute); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	if _, ok := s.Node("gone"); ok {
		t.Fatal("a node with no stream and an hour-old report is still held")
	}
	if _, ok := s.Node("kept"); !ok {
		t.Fatal("a connected node was pruned")
	}
}
