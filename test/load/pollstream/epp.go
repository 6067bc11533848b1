package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/test/load/reference"
)

// eppCores runs the real GIE endpoint picker (o.epp) against the model
// servers at addrs: an envtest control plane holds an InferencePool and
// one Ready pod per address, the EPP scrapes every pod itself each
// o.period, and its process CPU (from /proc) is measured over o.duration
// after o.warmup. It returns the EPP's cores and the scrapes/s served.
func eppCores(o options, addrs []string, served func() float64) (float64, float64, error) {
	crd, err := inferencePoolCRD()
	if err != nil {
		return 0, 0, err
	}
	cp, err := reference.StartControlPlane(o.assets, crd)
	if err != nil {
		return 0, 0, fmt.Errorf("control plane: %w", err)
	}
	defer func() { _ = cp.Stop() }()
	ctx := context.Background()
	pool, err := cp.CreatePool(ctx, addrs)
	if err != nil {
		return 0, 0, err
	}
	e, err := reference.StartEPP(ctx, reference.EPPOptions{
		Binary: o.epp, Kubeconfig: cp.Kubeconfig, Pool: pool, Pods: len(addrs), RefreshMetrics: o.period,
	})
	if err != nil {
		return 0, 0, err
	}
	defer e.Stop()
	cpu := func() float64 {
		d, err := e.CPU()
		if err != nil {
			return 0
		}
		return d.Seconds()
	}
	c, rate := measure(o, served, cpu)
	return c[0], rate, nil
}

// inferencePoolCRD is the InferencePool CRD of the GIE module in the
// build list (go list -m, run from the repository).
func inferencePoolCRD() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api-inference-extension").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return "", fmt.Errorf("find the gateway-api-inference-extension module (go list -m, run from the repository): %v", err)
	}
	p := filepath.Join(dir, "config", "crd", "bases", "inference.networking.k8s.io_inferencepools.yaml")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("inferencepool crd: %w", err)
	}
	return p, nil
}

// measure is cores over several CPU readings (seconds used so far each).
func measure(o options, served func() float64, cpus ...func() float64) ([]float64, float64) {
	time.Sleep(o.warmup)
	before := make([]float64, len(cpus))
	for i, c := range cpus {
		before[i] = c()
	}
	s0, t0 := served(), time.Now()
	time.Sleep(o.duration)
	secs := time.Since(t0).Seconds()
	out := make([]float64, len(cpus))
	for i, c := range cpus {
		out[i] = (c() - before[i]) / secs
	}
	return out, (served() - s0) / secs
}
