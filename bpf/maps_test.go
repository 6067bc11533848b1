package bpf

import (
	"testing"
	"time"
)

func TestSumFlow(t *testing.T) {
	t.Parallel()
	got := sumFlow([]ztunnelFlowVal{
		{BytesSent: 10, BytesRecv: 1, Opened: 2, Closed: 1},
		{},
		{BytesSent: 5, BytesRecv: 4, Opened: 0, Closed: 1},
	})
	want := FlowTotals{BytesSent: 15, BytesReceived: 5, ConnectionsOpened: 2, ConnectionsClosed: 2}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got.Active() != 0 {
		t.Errorf("active %d", got.Active())
	}
	// A close counted on one CPU before the open is read on another
	// never makes active negative.
	if a := (FlowTotals{ConnectionsOpened: 1, ConnectionsClosed: 2}).Active(); a != 0 {
		t.Errorf("active %d", a)
	}
}

func TestSumNS(t *testing.T) {
	t.Parallel()
	if got := sumNS([]uint64{1000, 0, 500}); got != 1500*time.Nanosecond {
		t.Fatalf("got %v", got)
	}
}

func TestLegString(t *testing.T) {
	t.Parallel()
	for leg, want := range map[Leg]string{LegApp: "app", LegHBONE: "hbone", LegOther: "other"} {
		if leg.String() != want {
			t.Errorf("%d: %s", leg, leg.String())
		}
	}
}
