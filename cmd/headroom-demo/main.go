// Command headroom-demo runs headroom on simulated GPUs in one process, with
// no GPU and no cluster: `make demo`.
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

	"github.com/headroom-dev/headroom/internal/demo"
	"github.com/headroom-dev/headroom/internal/envflag"
	"github.com/headroom-dev/headroom/internal/version"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("headroom-demo", flag.ContinueOnError)
	opts := demo.DefaultOptions()
	opts.AddFlags(fs)
	showVersion := version.AddFlag(fs)
	envflag.Usage(fs, "HEADROOM_DEMO_")
	if err := envflag.Parse(fs, "HEADROOM_DEMO_", args, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Println("headroom-demo", version.Get())
		return 0
	}
	if err := opts.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "headroom-demo:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fi, _ := os.Stdout.Stat()
	tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if err := demo.Run(ctx, opts, os.Stdout, tty, logger); err != nil {
		fmt.Fprintln(os.Stderr, "headroom-demo:", err)
		return 1
	}
	return 0
}
