//go:build cgo

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/modelsim"
	"github.com/headroom-dev/headroom/test/load/reference"
)

// refs are the reference parts a benchmark run needs: the control plane
// and EPP starter when the epp policy runs, the llm-d-inference-sim
// backend when that simulator does.
type refs struct {
	cp   *reference.ControlPlane
	epp  func(ctx context.Context, endpoints []string) ([]string, func(), error)
	llmd cluster.Backend
	logs []io.Closer
}

func startRefs(o options, policies []string) (*refs, error) {
	r := &refs{}
	if slices.Contains(splitList(o.sims), simLLMD) {
		log, err := r.logFile(o, "llm-d-inference-sim.log")
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(o.simBin); err != nil {
			return nil, fmt.Errorf("llm-d-inference-sim: %w (make reference-tools builds it)", err)
		}
		r.llmd = &llmdBackend{bin: o.simBin, log: log}
	}
	if !slices.Contains(policies, cluster.PolicyEPP) {
		return r, nil
	}
	crd, err := inferencePoolCRD()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if r.cp, err = reference.StartControlPlane(o.assets, crd); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "routing: kube-apiserver and etcd up in %s for the EPP\n", time.Since(start).Round(100*time.Millisecond))
	log, err := r.logFile(o, "epp.log")
	if err != nil {
		r.stop()
		return nil, err
	}
	r.epp = func(ctx context.Context, endpoints []string) ([]string, func(), error) {
		pool, err := r.cp.CreatePool(ctx, endpoints)
		if err != nil {
			return nil, nil, err
		}
		e, err := reference.StartEPP(ctx, reference.EPPOptions{Binary: o.eppBin, Kubeconfig: r.cp.Kubeconfig, Pool: pool, Pods: len(endpoints), Log: log})
		if err != nil {
			return nil, nil, err
		}
		return []string{e.ExtProc}, e.Stop, nil
	}
	return r, nil
}

func (r *refs) logFile(o options, name string) (io.Writer, error) {
	if o.logDir == "" {
		return io.Discard, nil
	}
	if err := os.MkdirAll(o.logDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(o.logDir, name))
	if err != nil {
		return nil, err
	}
	r.logs = append(r.logs, f)
	return &lockedWriter{w: f}, nil
}

func (r *refs) stop() {
	if r.cp != nil {
		_ = r.cp.Stop()
	}
	for _, l := range r.logs {
		_ = l.Close()
	}
}

// lockedWriter serialises the writes of several processes' output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// inferencePoolCRD is the InferencePool v1 CRD that the GIE module in the
// build list ships.
func inferencePoolCRD() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api-inference-extension").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		return "", fmt.Errorf("find the gateway-api-inference-extension module (go list -m, run from the repository): %v", err)
	}
	return filepath.Join(dir, "config", "crd", "bases", "inference.networking.k8s.io_inferencepools.yaml"), nil
}

// llmdBackend starts llm-d-inference-sim servers whose classes mirror the
// modelsim profiles of the same name (simClass).
type llmdBackend struct {
	bin string
	log io.Writer
}

func (b *llmdBackend) Name() string { return "llm-d-inference-sim" }

func (b *llmdBackend) Check(class string) error {
	_, err := simClass(class)
	return err
}

func (b *llmdBackend) Capacity(class string, meanPrompt, meanOutput float64) float64 {
	c, err := simClass(class)
	if err != nil {
		return 0
	}
	return c.Capacity(meanPrompt, meanOutput)
}

func (b *llmdBackend) Start(ctx context.Context, s cluster.BackendServer) (func(), error) {
	c, err := simClass(s.Class)
	if err != nil {
		return nil, err
	}
	sim, err := reference.StartSim(ctx, reference.SimOptions{Binary: b.bin, Model: s.Model, Address: s.Addr, Class: c,
		LoRAs: s.LoRAs, MaxLoRAs: s.MaxLoRAs, Seed: s.Seed, Log: b.log})
	if err != nil {
		return nil, err
	}
	return sim.Stop, nil
}

// simClass configures llm-d-inference-sim like the modelsim profile of the
// same name: a slot per batch sequence, a prefill of one iteration plus
// the profile's rate per prompt token, the inter-token latency of a lone
// sequence growing to a full batch's (the time factor under load), and the
// same KV cache in 16-token blocks. The two simulators then differ in
// their models, not in their speeds: llm-d-inference-sim runs each
// request on its own slot with no shared iterations, so prefills do not
// stall decodes and a queue forms only when every slot is busy.
func simClass(name string) (reference.SimClass, error) {
	p, err := modelsim.LookupProfile(name)
	if err != nil {
		return reference.SimClass{}, err
	}
	lone := p.DecodeStepBase + p.DecodeStepPerSeq
	full := p.DecodeStepBase + time.Duration(p.MaxRunning)*p.DecodeStepPerSeq
	c := reference.SimClass{
		Name: p.Name, MaxNumSeqs: p.MaxRunning,
		PrefillOverhead:     p.DecodeStepBase,
		PrefillPerToken:     time.Duration(float64(time.Second) / p.PrefillTokensPerSecond),
		InterTokenLatency:   lone,
		TimeFactorUnderLoad: float64(full) / float64(lone),
		KVCacheBlocks:       p.KVCacheTokens / 16, BlockSize: 16,
	}
	return c, c.Validate()
}
