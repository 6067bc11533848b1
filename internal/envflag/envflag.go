// Package envflag lets every command-line flag be set from the environment:
// flag "collector.nvml" reads HEADROOM_COLLECTOR_NVML, "listen-address"
// reads HEADROOM_LISTEN_ADDRESS. A flag given on the command line wins.
//
// A flag whose value has a CommandLineOnly method returning true (such as
// --version) has no environment variable.
package envflag

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Name returns the environment variable for a flag.
func Name(prefix, flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return prefix + strings.ToUpper(r.Replace(flagName))
}

// commandLineOnly marks a flag.Value that is never read from the
// environment.
type commandLineOnly interface{ CommandLineOnly() bool }

func fromEnvironment(f *flag.Flag) bool {
	c, ok := f.Value.(commandLineOnly)
	return !ok || !c.CommandLineOnly()
}

// Parse parses args into fs, then fills every flag not given on the command
// line from its environment variable (looked up with getenv).
func Parse(fs *flag.FlagSet, prefix string, args []string, getenv func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if getenv == nil {
		getenv = os.LookupEnv
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] || !fromEnvironment(f) {
			return
		}
		env := Name(prefix, f.Name)
		if v, ok := getenv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("invalid value %q for %s: %w", v, env, e)
			}
		}
	})
	return err
}

// Usage appends each flag's environment variable to its usage text, so
// -help documents both.
func Usage(fs *flag.FlagSet, prefix string) {
	fs.VisitAll(func(f *flag.Flag) {
		if fromEnvironment(f) {
			f.Usage += " [$" + Name(prefix, f.Name) + "]"
		}
	})
}
