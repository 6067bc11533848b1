package collector

import (
	"context"
	"flag"
	"log/slog"

	"github.com/headroom-dev/headroom/snapshot"
)

// Entry is one row of the collector table: everything the agent needs to
// know of one collector. Each collector's package builds its own (its Entry
// function), so adding a collector touches that package and one line of
// the table.
type Entry struct {
	Name      string
	DefaultOn bool
	Help      string
	// Options are the collector's own settings (a pointer), at their
	// defaults until flags are parsed; nil when it has none. The table registers their
	// flags and checks them when the collector is on. Entries that share
	// settings (ztunnel and ztunnel_ebpf) hold the same value: its flags
	// are registered once, and it is checked when either is on.
	Options Options
	// Owns are the sections the source's Collect fills (Reading.Own). No
	// two entries own the same section.
	Owns []snapshot.Section
	// Reads and Writes declare the source's enrich step, if it has one:
	// the sections it reads and the ones its Part writes. Every step that
	// writes a section another step reads comes before that step in the
	// table.
	Reads, Writes []snapshot.Section
	// Uses names entries whose sources this one's factory reaches through
	// Env.Source (ztunnel names pods from the pods source's runtime view).
	// They come earlier in the table; one that is off gives nil.
	Uses []string
	// New builds the source.
	New Factory
}

// enriches reports whether the entry declares an enrich step.
func (e *Entry) enriches() bool { return len(e.Writes) > 0 }

// Options are a collector's own settings.
type Options interface {
	// AddFlags registers the settings' flags on fs, with the current
	// values as defaults.
	AddFlags(fs *flag.FlagSet)
	// Validate reports every invalid setting at once; it changes nothing.
	Validate() error
}

// Factory builds a source. A factory error disables the source for the
// agent's lifetime: it is reported as a failed collector on every tick.
type Factory func(env Env) (Source, error)

// Env is what every factory is given.
type Env struct {
	// Ctx bounds the background work a source starts (refresh loops,
	// event watchers, scrape clocks).
	Ctx context.Context
	// Logger is scoped to the collector.
	Logger *slog.Logger
	Node   string
	// Host is where the host's /proc and cgroup v2 mount are.
	Host Host

	build *build
}

// build is what the factories of one table build share.
type build struct {
	sources map[string]Source
	shared  map[string]any
}

// Source returns the source an earlier entry built, named in this entry's
// Uses; nil when that collector is off or failed to start.
func (e Env) Source(name string) Source {
	if e.build == nil {
		return nil
	}
	return e.build.sources[name]
}

// Shared returns the object stored under key for this build, making it with
// mk the first time (mk's error is returned then and every later time).
// Entries of one package share objects with it (ztunnel's two sources share
// one finder); a key holds one object per agent, not per process.
func (e Env) Shared(key string, mk func() (any, error)) (any, error) {
	if e.build == nil {
		return mk()
	}
	type made struct {
		v   any
		err error
	}
	if m, ok := e.build.shared[key].(made); ok {
		return m.v, m.err
	}
	v, err := mk()
	e.build.shared[key] = made{v, err}
	return v, err
}
