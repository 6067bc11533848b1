//go:build cgo

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Backend starts model servers other than sim/modelsim (processes of a
// simulator this repository did not write, say), so that a benchmark can
// run the same pools on both. A node's NodeSpec.Server names the server
// class the backend starts on each of its GPUs.
type Backend interface {
	// Name says which servers it starts, for reports.
	Name() string
	// Check reports whether it can start servers of class.
	Check(class string) error
	// Capacity is one server of class's completed requests per second at
	// full load for the mean prompt and output lengths (tokens).
	Capacity(class string, meanPrompt, meanOutput float64) float64
	// Start starts one server reached at spec.Addr and returns what stops
	// it.
	Start(ctx context.Context, spec BackendServer) (stop func(), err error)
}

// BackendServer is one server a Backend starts.
type BackendServer struct {
	// Name is the pod's name; Class the node's NodeSpec.Server.
	Name, Class string
	// Model is the served model.
	Model string
	// Addr is the pod address, ip:port, it must be reached at.
	Addr      string
	Node, GPU int
	// LoRAs and MaxLoRAs are the node's (NodeSpec).
	LoRAs    []string
	MaxLoRAs int
	Seed     uint64
}

// sharedPort finds a port free on every one of ips, so that the pool's
// servers share a target port as an InferencePool's pods do (each on its
// own loopback IP). Another process may take it before the servers
// listen; starting them then fails and says so.
func sharedPort(ips []string) (int, error) {
	if len(ips) == 0 {
		return 0, errors.New("no server addresses")
	}
	for range 20 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			return 0, fmt.Errorf("find a shared port: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{ln}
		ok := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, l)
		}
		for _, l := range lns {
			l.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("find a shared port: none free on every server address after 20 tries")
}

// serverIP is the loopback address of GPU g's server on node i.
func serverIP(node, gpu int) string { return fmt.Sprintf("127.0.%d.%d", node+1, gpu+10) }
