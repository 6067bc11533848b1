package kubenode

import (
	"fmt"
	"net"
	"os"
	"sync"

	"google.golang.org/grpc"
)

// server is a gRPC server on a unix socket that can stop and start again
// on the same path, as a restarting kubelet or runtime does.
type server struct {
	socket   string
	register func(*grpc.Server)

	mu  sync.Mutex
	srv *grpc.Server
}

// Socket is the socket path.
func (s *server) Socket() string { return s.socket }

// Start listens on the socket, replacing a stale one.
func (s *server) Start() error {
	_ = os.Remove(s.socket)
	ln, err := net.Listen("unix", s.socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.socket, err)
	}
	srv := grpc.NewServer()
	s.register(srv)
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// Stop stops serving and removes the socket.
func (s *server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
	_ = os.Remove(s.socket)
}
