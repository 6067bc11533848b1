// Command headroom-agent samples the GPUs of a node and serves them as a
// Prometheus target. See the README for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/headroom-dev/headroom/agent"
	"github.com/headroom-dev/headroom/internal/envflag"
	"github.com/headroom-dev/headroom/internal/version"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	fs := flag.NewFlagSet("headroom-agent", flag.ContinueOnError)
	opts, gpu := agent.DefaultOptions(), defaultGPUBackend()
	opts.AddFlags(fs)
	gpu.AddFlags(fs)
	showVersion := version.AddFlag(fs)
	envflag.Usage(fs, "HEADROOM_")
	if err := envflag.Parse(fs, "HEADROOM_", args, nil); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "headroom-agent:", err)
		return 2
	}
	if *showVersion {
		fmt.Println("headroom-agent", version.Get())
		return 0
	}
	if err := errors.Join(opts.Validate(), gpu.Validate()); err != nil {
		fmt.Fprintf(os.Stderr, "headroom-agent: invalid configuration:\n%v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := opts.NewLogger(os.Stderr)
	err := gpu.apply(ctx, &opts, logger)
	var a *agent.Agent
	if err == nil {
		a, err = agent.New(ctx, opts, logger)
	}
	if err == nil {
		err = a.Run(ctx)
	}
	if err != nil {
		logger.Error("agent failed", "err", err)
		return 1
	}
	return 0
}
