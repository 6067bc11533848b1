package collector

import (
	"errors"
	"flag"
	"fmt"
	"slices"

	"github.com/headroom-dev/headroom/snapshot"
)

// Table is the list of collectors in the order they are built, their parts
// filled in, their enrich steps run, and their series exported.
type Table []Entry

// DefaultEnabled returns the names of the entries that are on by default,
// in table order.
func (t Table) DefaultEnabled() []string {
	var names []string
	for _, e := range t {
		if e.DefaultOn {
			names = append(names, e.Name)
		}
	}
	return names
}

// With returns a copy of t with e in place of the entry of the same name,
// or e appended when there is none (tests and the demo give the nvml
// collector their own GPUs this way).
func (t Table) With(e Entry) Table {
	out := slices.Clone(t)
	if i := slices.IndexFunc(out, func(x Entry) bool { return x.Name == e.Name }); i >= 0 {
		out[i] = e
		return out
	}
	return append(out, e)
}

// OptionsOf returns the options of the named entry as a T: false when t has
// no such entry or its options are not a T.
func OptionsOf[T Options](t Table, name string) (T, bool) {
	var zero T
	for _, e := range t {
		if e.Name == name {
			o, ok := e.Options.(T)
			return o, ok
		}
	}
	return zero, false
}

// Switches holds the --collector.<name> flags of a table.
type Switches struct {
	names []string
	on    map[string]*bool
}

// AddFlags registers --collector.<name> for every entry of t and the flags
// of every entry's options (shared options once).
func (t Table) AddFlags(fs *flag.FlagSet) *Switches {
	s := &Switches{on: make(map[string]*bool, len(t))}
	var added []Options
	for _, e := range t {
		s.names = append(s.names, e.Name)
		s.on[e.Name] = fs.Bool("collector."+e.Name, e.DefaultOn,
			fmt.Sprintf("enable the %s collector: %s", e.Name, e.Help))
		if e.Options != nil && !slices.Contains(added, e.Options) {
			e.Options.AddFlags(fs)
			added = append(added, e.Options)
		}
	}
	return s
}

// Enabled returns the names of the switched-on collectors, in table order.
func (s *Switches) Enabled() []string {
	var names []string
	for _, n := range s.names {
		if *s.on[n] {
			names = append(names, n)
		}
	}
	return names
}

// Validate checks the table's declarations (see Check) and the options of
// every enabled collector, and reports every problem at once.
func (t Table) Validate(enabled []string) error {
	errs := []error{t.Check()}
	var checked []Options
	for _, e := range t {
		if e.Options == nil || !slices.Contains(enabled, e.Name) || slices.Contains(checked, e.Options) {
			continue
		}
		checked = append(checked, e.Options)
		errs = append(errs, e.Options.Validate())
	}
	for _, n := range enabled {
		if !slices.ContainsFunc(t, func(e Entry) bool { return e.Name == n }) {
			errs = append(errs, fmt.Errorf("collector %q is not in the table", n))
		}
	}
	return errors.Join(errs...)
}

// Check reports what is wrong with the table itself, a programming error
// rather than a configuration one: an unnamed, duplicate or factory-less
// entry, a section with two owners, a Uses that does not name an earlier
// entry, or an enrich step that reads a section a later step writes.
func (t Table) Check() error {
	var errs []error
	owner := map[snapshot.Section]string{}
	writers := map[snapshot.Section][]int{}
	for i, e := range t {
		switch {
		case e.Name == "":
			errs = append(errs, fmt.Errorf("collector table entry %d has no name", i))
		case slices.ContainsFunc(t[:i], func(x Entry) bool { return x.Name == e.Name }):
			errs = append(errs, fmt.Errorf("collector %q is in the table twice", e.Name))
		}
		if e.New == nil {
			errs = append(errs, fmt.Errorf("collector %q has no factory", e.Name))
		}
		for _, s := range e.Owns {
			if o, ok := owner[s]; ok {
				errs = append(errs, fmt.Errorf("section %q has two owners, %s and %s", s, o, e.Name))
			}
			owner[s] = e.Name
		}
		for _, u := range e.Uses {
			if !slices.ContainsFunc(t[:i], func(x Entry) bool { return x.Name == u }) {
				errs = append(errs, fmt.Errorf("collector %q uses %q, which does not come before it in the table", e.Name, u))
			}
		}
		if len(e.Reads) > 0 && len(e.Writes) == 0 {
			errs = append(errs, fmt.Errorf("collector %q declares enrich reads but no writes", e.Name))
		}
		for _, s := range e.Writes {
			writers[s] = append(writers[s], i)
		}
	}
	for i, e := range t {
		for _, s := range e.Reads {
			for _, w := range writers[s] {
				if w > i {
					errs = append(errs, fmt.Errorf("collector %q's enrich step reads %q, which %q's later step writes: move %q before it", e.Name, s, t[w].Name, t[w].Name))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Build creates the enabled sources in table order. A factory error does
// not stop the agent: that source is reported failed on every tick.
func (t Table) Build(enabled []string, env Env) []Enabled {
	env.build = &build{sources: map[string]Source{}, shared: map[string]any{}}
	base := env.Logger
	var out []Enabled
	for _, e := range t {
		if !slices.Contains(enabled, e.Name) {
			continue
		}
		env.Logger = base.With("collector", e.Name)
		src, err := e.New(env)
		if err != nil {
			env.Logger.Error("collector disabled: it could not start", "err", err)
		} else {
			env.build.sources[e.Name] = src
		}
		out = append(out, Enabled{Entry: e, Source: src, InitErr: err})
	}
	return out
}
