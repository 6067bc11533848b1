// Package certreload serves a TLS key pair from files: parsed once, and
// parsed again only when the files change (a rotated Kubernetes secret,
// cert-manager renewing it), not on every handshake. A handshake looks at
// the files at most once a second (two stat calls); a change that does
// not load (a half-written pair) keeps the pair in use until it does.
package certreload

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// DefaultCheckEvery is how often the files are looked at, at most.
const DefaultCheckEvery = time.Second

// Reloader holds the key pair of a certificate and a key file.
type Reloader struct {
	certFile, keyFile string
	logger            *slog.Logger
	every             time.Duration
	now               func() time.Time
	load              func(certFile, keyFile string) (tls.Certificate, error)

	mu      sync.Mutex
	pair    *tls.Certificate
	loaded  [2]stamp // the files' stamps when pair was loaded
	failed  [2]stamp // the stamps last seen failing to load (logged once)
	checked time.Time
}

// stamp tells a file's versions apart.
type stamp struct {
	mod  time.Time
	size int64
}

// New loads the pair; it fails when the files do not hold one.
func New(certFile, keyFile string, logger *slog.Logger) (*Reloader, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, logger: logger, every: DefaultCheckEvery, now: time.Now, load: tls.LoadX509KeyPair}
	st, err := r.stamps()
	if err != nil {
		return nil, err
	}
	pair, err := r.load(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load key pair %s, %s: %w", certFile, keyFile, err)
	}
	r.pair, r.loaded, r.checked = &pair, st, r.now()
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.every {
		r.checked = now
		r.reloadLocked()
	}
	return r.pair, nil
}

// reloadLocked loads the files again when their stamps changed.
func (r *Reloader) reloadLocked() {
	st, err := r.stamps()
	if err != nil {
		if st != r.failed {
			r.failed = st
			r.logger.Warn("cannot read the TLS key pair; serving the one loaded before", "cert", r.certFile, "err", err)
		}
		return
	}
	if st == r.loaded {
		return
	}
	pair, err := r.load(r.certFile, r.keyFile)
	if err != nil {
		if st != r.failed {
			r.failed = st
			r.logger.Warn("changed TLS key pair does not load (yet); serving the one loaded before", "cert", r.certFile, "err", err)
		}
		return
	}
	r.pair, r.loaded = &pair, st
	r.logger.Info("TLS key pair reloaded", "cert", r.certFile)
}

func (r *Reloader) stamps() ([2]stamp, error) {
	var out [2]stamp
	for i, f := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return out, fmt.Errorf("stat %s: %w", f, err)
		}
		out[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return out, nil
}
