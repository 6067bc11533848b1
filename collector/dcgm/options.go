package dcgm

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Defaults of the source.
const (
	DefaultRetry  = 30 * time.Second
	DefaultUpdate = time.Second
	minRetry      = time.Second
	minUpdate     = 100 * time.Millisecond
)

// Options configures the source.
type Options struct {
	// Address of a standalone nv-hostengine: host:port, or a unix socket
	// as /path or unix:///path. Empty starts an embedded host engine.
	Address string
	// Retry is how long to wait between connection attempts.
	Retry time.Duration
	// Update is how often DCGM samples the watched fields.
	Update time.Duration
}

// DefaultOptions returns the defaults: an embedded host engine.
func DefaultOptions() Options {
	return Options{Retry: DefaultRetry, Update: DefaultUpdate}
}

// AddFlags registers the source's flags.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Address, "dcgm.address", o.Address, "standalone nv-hostengine as host:port or a unix socket path (empty: embedded host engine)")
	fs.DurationVar(&o.Retry, "dcgm.retry-interval", o.Retry, "how often to retry loading DCGM or reaching its host engine")
	fs.DurationVar(&o.Update, "dcgm.update-interval", o.Update, "how often DCGM samples the profiling fields (minimum 100ms)")
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Retry < minRetry {
		errs = append(errs, fmt.Errorf("--dcgm.retry-interval %s is below %s", o.Retry, minRetry))
	}
	if o.Update < minUpdate {
		errs = append(errs, fmt.Errorf("--dcgm.update-interval %s is below %s", o.Update, minUpdate))
	}
	if err := validateAddress(o.Address); err != nil {
		errs = append(errs, fmt.Errorf("--dcgm.address: %w", err))
	}
	return errors.Join(errs...)
}

func validateAddress(addr string) error {
	if addr == "" {
		return nil
	}
	if _, ok := SocketPath(addr); ok {
		return nil
	}
	if strings.HasPrefix(addr, "unix://") {
		return fmt.Errorf("%q: empty socket path", addr)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port or a unix socket path: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: want host:port with a port in 1-65535", addr)
	}
	return nil
}

// SocketPath reports whether addr names a unix socket, and its path.
func SocketPath(addr string) (string, bool) {
	if p, ok := strings.CutPrefix(addr, "unix://"); ok {
		return p, p != ""
	}
	return addr, strings.HasPrefix(addr, "/")
}
