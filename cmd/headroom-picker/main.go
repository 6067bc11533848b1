// Command headroom-picker holds the live telemetry the node agents stream
// to it and (with picker/extproc) routes each inference request to the
// least-pressured GPU pod. See the README for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/headroom-dev/headroom/internal/envflag"
	"github.com/headroom-dev/headroom/internal/version"
	"github.com/headroom-dev/headroom/picker/app"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("headroom-picker", flag.ContinueOnError)
	opts := app.DefaultOptions()
	opts.AddFlags(fs)
	showVersion := version.AddFlag(fs)
	envflag.Usage(fs, "HEADROOM_PICKER_")
	if err := envflag.Parse(fs, "HEADROOM_PICKER_", args, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "headroom-picker:", err)
		return 2
	}
	if *showVersion {
		fmt.Println("headroom-picker", version.Get())
		return 0
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "headroom-picker: invalid configuration:\n%v\n", err)
		return 2
	}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(opts.LogLevel))
	logger := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := app.New(opts, logger)
	if err == nil {
		err = p.Run(ctx)
	}
	if err != nil {
		logger.Error("picker failed", "err", err)
		return 1
	}
	return 0
}
