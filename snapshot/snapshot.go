// Package snapshot is the state of one node at one sampling instant: its
// GPUs, which pod holds each of them, the model servers' load and what the
// mesh costs there.
//
// It sits below everything that fills or reads it: the collectors fill a
// Snapshot, the agent publishes it, and the Prometheus exporter and the
// report stream read it. It imports none of them. A Snapshot is built once
// per sampling tick and never mutated after it is published, so its readers
// share it without locks.
package snapshot

import "time"

// Snapshot is one immutable sample of the node.
type Snapshot struct {
	// Node is the Kubernetes node name (or host name on standalone hosts).
	Node string
	// Time is when the sampling tick started.
	Time time.Time
	// Duration is how long the whole tick took.
	Duration time.Duration
	// Sources reports every enabled collector, in table order.
	Sources []SourceStatus
	// System is driver-wide information from the GPU backend.
	System System
	// GPUs are the node's physical GPUs, ordered by index.
	GPUs []GPU
	// Attribution maps GPUs, VRAM and containers to pods; nil when the pods
	// collector is off.
	Attribution *Attribution
	// Energy is the GPUs' energy attributed to pods (estimates); nil when
	// the energy collector is off.
	Energy *Energy
	// Mesh is the node proxy's (ztunnel's) cost; nil when the ztunnel
	// collectors are off.
	Mesh *Mesh
}

// SourceStatus says how one collector did in this tick.
type SourceStatus struct {
	Name     string
	Success  bool
	Duration time.Duration
	// Err is the reason the source failed; empty on success.
	Err string
}
