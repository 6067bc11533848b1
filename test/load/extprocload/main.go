// Command extprocload measures the latency headroom-picker adds on the
// request path, against a pass-through ext_proc server in the same run.
//
// Each server runs in its own child process, pinned to one CPU; the load
// (this process, playing Envoy) runs on the other. At a fixed request rate
// it sends each request's headers and body (16 KiB chunks, FULL_DUPLEX_STREAMED)
// and times from the last request chunk sent to the last body chunk
// received back: what the gateway waits before it can forward. The
// picker child is the whole picker (static endpoints, one node report);
// the pass-through child answers each message at once and parses nothing.
// Allocation per request is the child's Go heap allocation over the run
// divided by requests. Both servers speak TLS (a self-signed certificate
// the load does not verify, as gateways do) unless -tls=false.
//
//	go run ./test/load/extprocload -rate 5000 -body 4096
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

const (
	roleEnv = "HEADROOM_EXTPROCLOAD_ROLE"
	tlsEnv  = "HEADROOM_EXTPROCLOAD_TLS"
)

type options struct {
	rate             float64
	body             int
	duration, warmup time.Duration
	conns            int
	tls              bool
}

func main() {
	if role := os.Getenv(roleEnv); role != "" {
		if err := child(role, os.Getenv(tlsEnv) == "1", os.Args[1:]); err != nil {
			fmt.Fprintf(os.Stderr, "extprocload %s: %v\n", role, err)
			os.Exit(1)
		}
		return
	}
	var o options
	fs := flag.NewFlagSet("extprocload", flag.ExitOnError)
	fs.Float64Var(&o.rate, "rate", 5000, "requests per second offered")
	fs.IntVar(&o.body, "body", 4096, "request body bytes")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured phase per server")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured phase first")
	fs.IntVar(&o.conns, "conns", 4, "gRPC connections the requests share (Envoy's ext_proc client connections)")
	fs.BoolVar(&o.tls, "tls", true, "both servers serve TLS with a self-signed certificate, as the picker does by default (false: plaintext)")
	_ = fs.Parse(os.Args[1:])
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "extprocload:", err)
		os.Exit(1)
	}
}
