// Package collector is the contract between the agent and its data sources,
// and the machinery that runs them.
//
// Each source lives in its own package under collector/ and describes
// itself in one Entry: its name, its default-on bit and --collector.<name>
// switch (in the manner of node_exporter), its own options and flags, what
// it reads and writes of the snapshot, the other sources it uses, and its
// factory. The built-in table lists them in order (collector/builtin); this
// package imports none of them.
//
// A sample has two phases. First every source reads what it owns, all at
// once, each under its own deadline (Source.Collect); the parts they own
// are filled in. Then the enrich steps run one after another in table
// order, each under a deadline of its own: a step lays what its source read
// over sections another source owns (DCGM's fields on NVML's GPUs, the pod
// join on NVML's processes, model-server readings on the pods). Each entry
// declares the sections it owns, reads and writes, and the table refuses
// an order in which a step would read a section a later step writes. A
// failing, hung or panicking source or step marks only its own source
// failed and leaves the rest of the snapshot as it was.
package collector

import (
	"context"

	"github.com/headroom-dev/headroom/snapshot"
)

// Source is one data source of the agent.
//
// Collect is called once per sampling tick, never concurrently with itself
// or with its own enrich step. It reads what the source owns and must
// honour ctx: when the deadline passes its reading is discarded.
type Source interface {
	Collect(ctx context.Context) (Reading, error)
}

// Reading is what a source read in one tick.
type Reading struct {
	// Own fills the sections of the snapshot the source owns (its entry's
	// Owns) and touches nothing else; nil when it owns none.
	Own snapshot.Part
	// Enrich is the source's enrich step for this reading; nil when it has
	// none. Its entry must declare what it reads and writes.
	Enrich Enrich
}

// Enrich is the second phase of a source's sample. It runs after every
// source has read and filled its own sections, and after the enrich steps
// before it in the table. It may only read snap (the sections its entry
// declares in Reads; it may do I/O, under ctx) and returns the change to
// make, a Part that writes only the entry's Writes with plain assignments.
// The runner applies that Part only when the step returns in time and
// without error, so a failing step leaves the snapshot as it was.
type Enrich func(ctx context.Context, snap *snapshot.Snapshot) (snapshot.Part, error)
