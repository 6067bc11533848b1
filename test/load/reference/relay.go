package reference

import (
	"errors"
	"io"
	"net"
	"sync"
)

// Relay forwards TCP connections from a pod address (a loopback IP of its
// own, on the port every pod of the pool shares) to a server listening on
// another port, as a container port mapping does. llm-d-inference-sim
// binds ":port" on every interface, so two of them cannot share a port on
// different loopback IPs; an InferencePool's pods must share one.
type Relay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// NewRelay listens on listen and forwards every connection to target.
func NewRelay(listen, target string) (*Relay, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &Relay{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// Addr is the address the relay listens on.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

func (r *Relay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.forward(c)
	}
}

func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.conns, c)
}

// forward copies both ways until both directions end; a write side that
// ends is half-closed, so a client's request end reaches the server.
func (r *Relay) forward(in net.Conn) {
	defer r.wg.Done()
	out, err := net.Dial("tcp", r.target)
	if err != nil {
		in.Close()
		return
	}
	if !r.track(in) || !r.track(out) {
		in.Close()
		out.Close()
		return
	}
	var both sync.WaitGroup
	both.Add(2)
	pipe := func(dst, src net.Conn) {
		defer both.Done()
		_, err := io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok && err == nil {
			_ = tc.CloseWrite()
			return
		}
		// A reset or error on one side ends the other too.
		dst.Close()
		src.Close()
	}
	go pipe(out, in)
	go pipe(in, out)
	both.Wait()
	in.Close()
	out.Close()
	r.untrack(in)
	r.untrack(out)
}

// Close stops accepting, cuts every open connection and waits.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
