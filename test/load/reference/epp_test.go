//go:build cgo

package reference

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// tools finds the reference binaries and the control plane's, or skips:
// they are built by make reference-tools and make envtest-assets, which
// make test does not run (the EPP alone takes minutes to build cold).
func tools(t *testing.T) (epp, sim, assets, crd string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the reference EPP on a real kube-apiserver")
	}
	root := moduleRoot(t)
	epp = filepath.Join(root, ".cache", "reference", "epp")
	sim = filepath.Join(root, ".cache", "reference", "llm-d-inference-sim")
	assets = os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(root, ".cache", "envtest")
	}
	for _, p := range []string{epp, sim, filepath.Join(assets, "kube-apiserver"), filepath.Join(assets, "etcd")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is missing: run make reference-tools envtest-assets (%v)", p, err)
		}
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api-inference-extension").Output()
	if err != nil {
		t.Fatalf("find the GIE module: %v", err)
	}
	crd = filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "bases", "inference.networking.k8s.io_inferencepools.yaml")
	return epp, sim, assets, crd
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// simBackend starts llm-d-inference-sim servers of one class.
type simBackend struct {
	bin   string
	class SimClass
}

func (b simBackend) Name() string { return "llm-d-inference-sim" }
func (b simBackend) Check(string) error {
	return b.class.Validate()
}
func (b simBackend) Capacity(_ string, p, o float64) float64 { return b.class.Capacity(p, o) }
func (b simBackend) Start(ctx context.Context, s cluster.BackendServer) (func(), error) {
	sim, err := StartSim(ctx, SimOptions{Binary: b.bin, Model: s.Model, Address: s.Addr, Class: b.class, Seed: s.Seed})
	if err != nil {
		return nil, err
	}
	return sim.Stop, nil
}

// TestEPPRoutesLLMDSims runs the whole reference path: llm-d-inference-sim
// servers on pod addresses, the EPP on a kube-apiserver holding their
// InferencePool and Ready pods, and the gateway stand-in asking the EPP
// over ext_proc. Every request must be routed into the pool and answered,
// on more than one server.
func TestEPPRoutesLLMDSims(t *testing.T) {
	eppBin, simBin, assets, crd := tools(t)
	cp, err := StartControlPlane(assets, crd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	}()
	class := SimClass{Name: "fast", MaxNumSeqs: 4, PrefillOverhead: 5 * time.Millisecond, PrefillPerToken: 20 * time.Microsecond,
		InterTokenLatency: 10 * time.Millisecond, TimeFactorUnderLoad: 1.2, KVCacheBlocks: 1024, BlockSize: 16}
	o := cluster.DefaultOptions()
	o.Nodes = []cluster.NodeSpec{{System: "dgxh100", Server: "fast", GPUs: 3}}
	o.Policy, o.Backend = cluster.PolicyEPP, simBackend{bin: simBin, class: class}
	o.EPP = func(ctx context.Context, endpoints []string) ([]string, func(), error) {
		pool, err := cp.CreatePool(ctx, endpoints)
		if err != nil {
			return nil, nil, err
		}
		e, err := StartEPP(ctx, EPPOptions{Binary: eppBin, Kubeconfig: cp.Kubeconfig, Pool: pool, Pods: len(endpoints)})
		if err != nil {
			return nil, nil, err
		}
		return []string{e.ExtProc}, e.Stop, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := cluster.StartReady(ctx, o, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lo := loadgen.DefaultOptions()
	lo.URL, lo.Model, lo.Rate, lo.Duration = c.URL, o.Model, 20, 3*time.Second
	lo.Mix.OutputMax = 16
	g, err := loadgen.New(lo)
	if err != nil {
		t.Fatal(err)
	}
	sum := loadgen.Summarize(g.Run(ctx, nil), 0)
	st := c.Gateway.Stats()
	if sum.OK < 20 || sum.Failed > 0 || st.Decisions < uint64(sum.OK) {
		t.Fatalf("%d ok, %d failed (%v), %d decisions by the EPP", sum.OK, sum.Failed, sum.Errors, st.Decisions)
	}
	used := 0
	for _, ep := range c.Endpoints() {
		if st.PerEndpoint[ep].Routed > 0 {
			used++
		}
	}
	if used < 2 {
		t.Errorf("the EPP sent every request to one server: %+v", st.PerEndpoint)
	}
}
