//go:build !cgo

// Package demo runs headroom on simulated GPUs in one process. The
// simulator is built on go-nvml's mock servers, which need cgo.
package demo

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"time"
)

// Options configures the demo.
type Options struct{ Duration time.Duration }

// DefaultOptions returns the defaults.
func DefaultOptions() Options { return Options{} }

// AddFlags registers the demo's flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&o.Duration, "duration", 20*time.Second, "how long to run (0: until Ctrl-C)")
}

// Validate refuses: this build cannot simulate GPUs.
func (o *Options) Validate() error {
	return errors.New("the demo simulates GPUs with go-nvml's mock servers and needs a cgo build (CGO_ENABLED=1 and a C compiler)")
}

// Run is never reached: Validate refuses.
func Run(context.Context, Options, io.Writer, bool, *slog.Logger) error { return nil }
