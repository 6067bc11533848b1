package extproc

import (
	"errors"
	"flag"
	"fmt"
)

// Defaults of Options.
const (
	// DefaultFallbackEndpoints is how many endpoints the destination
	// header and metadata carry: the primary and two fallbacks.
	DefaultFallbackEndpoints = 3
	// DefaultMaxBodyBytes is the largest request body the picker buffers.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultChunkBytes is the size of the body chunks sent back to Envoy.
	// Some Envoy builds cap a streamed chunk at 64 KiB; the reference EPP
	// uses 62,000 bytes for a safe margin, and so do we.
	DefaultChunkBytes = 62000
)

// Options configures the ext_proc server.
type Options struct {
	// FallbackEndpoints is the most endpoints written, best first, into
	// x-gateway-destination-endpoint (comma-joined); 1 sends the primary alone.
	FallbackEndpoints int
	// MaxBodyBytes is the largest request body accepted (larger: 400). It
	// also caps the JSON response body kept to read its usage.
	MaxBodyBytes int
	// ChunkBytes is the size of the request body chunks sent back to Envoy.
	ChunkBytes int
}

// DefaultOptions returns the production defaults.
func DefaultOptions() Options {
	return Options{FallbackEndpoints: DefaultFallbackEndpoints, MaxBodyBytes: DefaultMaxBodyBytes, ChunkBytes: DefaultChunkBytes}
}

// AddFlags registers the flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.IntVar(&o.FallbackEndpoints, "extproc.fallback-endpoints", o.FallbackEndpoints, "endpoints sent in x-gateway-destination-endpoint, best first (1: the primary alone)")
	fs.IntVar(&o.MaxBodyBytes, "extproc.max-body-bytes", o.MaxBodyBytes, "largest request body buffered; larger requests get 400")
	fs.IntVar(&o.ChunkBytes, "extproc.chunk-bytes", o.ChunkBytes, "size of the request body chunks streamed back to the gateway")
}

// Validate checks the options and lists every problem.
func (o *Options) Validate() error {
	var errs []error
	if o.FallbackEndpoints < 1 || o.FallbackEndpoints > 64 {
		errs = append(errs, fmt.Errorf("--extproc.fallback-endpoints %d: want 1 to 64", o.FallbackEndpoints))
	}
	if o.MaxBodyBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("--extproc.max-body-bytes %d: want at least 1024", o.MaxBodyBytes))
	}
	if o.ChunkBytes < 1<<10 || o.ChunkBytes > 64<<10 {
		errs = append(errs, fmt.Errorf("--extproc.chunk-bytes %d: want 1024 to 65536 (Envoy may cap a chunk at 64 KiB)", o.ChunkBytes))
	}
	return errors.Join(errs...)
}
