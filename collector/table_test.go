package collector

import (
	"context"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/headroom-dev/headroom/internal/testutil"
	"github.com/headroom-dev/headroom/snapshot"
)

// fakeOptions are options with one flag and a switchable error.
type fakeOptions struct {
	name  string
	value string
	bad   bool
}

func (o *fakeOptions) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.value, o.name+".value", o.value, "a value")
}

func (o *fakeOptions) Validate() error {
	if o.bad {
		return errors.New("--" + o.name + ".value is bad")
	}
	return nil
}

func newEntry(name string) Entry {
	return Entry{Name: name, DefaultOn: true, New: func(Env) (Source, error) { return okSource(name), nil }}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	with := func(e Entry, f func(*Entry)) Entry { f(&e); return e }
	gpus, attr := []snapshot.Section{snapshot.SectionGPUs}, []snapshot.Section{snapshot.SectionAttribution}
	for _, tc := range []struct {
		name    string
		table   Table
		wantErr string
	}{
		{"sound", Table{
			with(newEntry("a"), func(e *Entry) { e.Owns = gpus }),
			with(newEntry("b"), func(e *Entry) { e.Reads, e.Writes = gpus, attr }),
			with(newEntry("c"), func(e *Entry) { e.Reads, e.Writes, e.Uses = attr, attr, []string{"b"} }),
		}, ""},
		{"no name", Table{newEntry("")}, "has no name"},
		{"twice", Table{newEntry("a"), newEntry("a")}, "in the table twice"},
		{"no factory", Table{with(newEntry("a"), func(e *Entry) { e.New = nil })}, "has no factory"},
		{"two owners", Table{
			with(newEntry("a"), func(e *Entry) { e.Owns = gpus }),
			with(newEntry("b"), func(e *Entry) { e.Owns = gpus }),
		}, "two owners"},
		{"uses a later entry", Table{with(newEntry("a"), func(e *Entry) { e.Uses = []string{"b"} }), newEntry("b")}, "does not come before it"},
		{"reads without writes", Table{with(newEntry("a"), func(e *Entry) { e.Reads = gpus })}, "no writes"},
		{"reads what a later step writes", Table{
			with(newEntry("reader"), func(e *Entry) { e.Reads, e.Writes = attr, []snapshot.Section{snapshot.SectionModelServers} }),
			with(newEntry("writer"), func(e *Entry) { e.Reads, e.Writes = gpus, attr }),
		}, `move "writer" before it`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.table.Check()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestTableOwnsItsOptions: a collector's flags are registered once (shared
// options too), parse into its options, and its options are checked only
// when it is on.
func TestTableOwnsItsOptions(t *testing.T) {
	t.Parallel()
	shared := &fakeOptions{name: "shared", value: "d"}
	own := &fakeOptions{name: "own", value: "d"}
	table := Table{newEntry("a"), newEntry("b"), newEntry("c")}
	table[0].Options, table[1].Options, table[2].Options = own, shared, shared
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sw := table.AddFlags(fs) // registering shared's flag twice would panic
	if err := fs.Parse([]string{"--own.value=x", "--shared.value=y", "--collector.a=false"}); err != nil {
		t.Fatal(err)
	}
	if own.value != "x" || shared.value != "y" {
		t.Errorf("parsed into %q and %q", own.value, shared.value)
	}
	if got := sw.Enabled(); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("enabled %v", got)
	}
	own.bad, shared.bad = true, true
	err := table.Validate(sw.Enabled())
	if err == nil || strings.Contains(err.Error(), "--own") || strings.Count(err.Error(), "--shared") != 1 {
		t.Errorf("Validate = %v, want shared's error once and none for the switched-off collector", err)
	}
	if err := table.Validate([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `"nope" is not in the table`) {
		t.Errorf("Validate of an unknown collector = %v", err)
	}
}

func TestWithAndOptionsOf(t *testing.T) {
	t.Parallel()
	o := &fakeOptions{name: "b"}
	table := Table{newEntry("a"), newEntry("b")}
	replaced := table.With(Entry{Name: "b", Options: o, New: newEntry("b").New})
	if table[1].Options != nil {
		t.Error("With changed the table it was called on")
	}
	if got, ok := OptionsOf[*fakeOptions](replaced, "b"); !ok || got != o {
		t.Errorf("OptionsOf = %v, %v", got, ok)
	}
	if _, ok := OptionsOf[*fakeOptions](replaced, "a"); ok {
		t.Error("OptionsOf found options an entry does not have")
	}
	if appended := table.With(newEntry("c")); len(appended) != 3 || appended[2].Name != "c" {
		t.Errorf("With of a new name: %v", appended)
	}
}

// TestBuildGivesUsesAndShared: a factory reaches an earlier source it uses
// and objects its package shares, once per build; a failed factory
// disables its source alone.
func TestBuildGivesUsesAndShared(t *testing.T) {
	t.Parallel()
	made := 0
	share := func(env Env) (any, error) {
		return env.Shared("k", func() (any, error) { made++; return made, nil })
	}
	var sawFirst Source
	var shared []any
	first := &closeCounter{fakeSource: okSource("first").(fakeSource)}
	table := Table{
		{Name: "first", DefaultOn: true, New: func(Env) (Source, error) { return first, nil }},
		{Name: "broken", DefaultOn: true, New: func(Env) (Source, error) { return nil, errors.New("no socket") }},
		{Name: "second", DefaultOn: true, Uses: []string{"first", "broken"}, New: func(env Env) (Source, error) {
			sawFirst = env.Source("first")
			if env.Source("broken") != nil {
				t.Error("a failed source was handed on")
			}
			v, _ := share(env)
			shared = append(shared, v)
			return okSource("second"), nil
		}},
		{Name: "third", DefaultOn: true, New: func(env Env) (Source, error) {
			v, _ := share(env)
			shared = append(shared, v)
			return okSource("third"), nil
		}},
	}
	env := Env{Ctx: context.Background(), Logger: testutil.Logger()}
	srcs := table.Build(table.DefaultEnabled(), env)
	if sawFirst != Source(first) || srcs[0].Source != Source(first) {
		t.Errorf("second saw %v, want first's source", sawFirst)
	}
	if srcs[1].InitErr == nil || srcs[2].InitErr != nil || srcs[3].InitErr != nil {
		t.Errorf("init errors: %v %v %v", srcs[1].InitErr, srcs[2].InitErr, srcs[3].InitErr)
	}
	if !slices.Equal(shared, []any{1, 1}) {
		t.Errorf("shared %v, want one object made once", shared)
	}
	table.Build(table.DefaultEnabled(), env)
	if made != 2 {
		t.Errorf("made %d objects over two builds, want one each", made)
	}
}
