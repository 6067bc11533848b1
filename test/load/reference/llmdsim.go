package reference

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// SimClass is one kind of llm-d-inference-sim server: its batch slots and
// latencies. Its model (docs/latency-simulation.md in that project): a
// request waits for one of MaxNumSeqs slots, then takes PrefillOverhead +
// prompt tokens × PrefillPerToken to its first token and InterTokenLatency
// per further token; every latency is multiplied by a factor that grows
// linearly from 1 with one request running to TimeFactorUnderLoad with
// MaxNumSeqs running.
type SimClass struct {
	Name                string
	MaxNumSeqs          int
	PrefillOverhead     time.Duration
	PrefillPerToken     time.Duration
	InterTokenLatency   time.Duration
	TimeFactorUnderLoad float64
	// KVCacheBlocks of BlockSize tokens is its simulated KV cache.
	KVCacheBlocks, BlockSize int
}

// Validate reports what cannot configure the simulator.
func (c SimClass) Validate() error {
	var errs []error
	if c.MaxNumSeqs < 1 {
		errs = append(errs, fmt.Errorf("max-num-seqs %d below 1", c.MaxNumSeqs))
	}
	if c.PrefillOverhead < 0 || c.PrefillPerToken < 0 || c.InterTokenLatency <= 0 {
		errs = append(errs, errors.New("latencies must be non-negative and the inter-token latency positive"))
	}
	if c.TimeFactorUnderLoad < 1 || math.IsInf(c.TimeFactorUnderLoad, 0) {
		errs = append(errs, fmt.Errorf("time factor under load %v below 1", c.TimeFactorUnderLoad))
	}
	if c.KVCacheBlocks < 1 || c.BlockSize < 8 {
		errs = append(errs, errors.New("KV cache needs at least one block of at least 8 tokens"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("llm-d-inference-sim class %q: %w", c.Name, err)
	}
	return nil
}

// Capacity is the class's steady completed requests per second at full
// load for the mean prompt and output lengths: every slot runs one request
// at a time, slowed by the full time factor.
func (c SimClass) Capacity(meanPrompt, meanOutput float64) float64 {
	if c.Validate() != nil {
		return 0
	}
	perRequest := c.PrefillOverhead.Seconds() + meanPrompt*c.PrefillPerToken.Seconds() +
		math.Max(meanOutput-1, 0)*c.InterTokenLatency.Seconds()
	return float64(c.MaxNumSeqs) / (perRequest * c.TimeFactorUnderLoad)
}

// SimOptions configures one llm-d-inference-sim process.
type SimOptions struct {
	// Binary is llm-d-inference-sim (hack/reference-tools.sh builds it).
	Binary string
	// Model is the served model; a name that is not a Hugging Face model,
	// with the dummy tokenizer forced, so it never goes to the network.
	Model string
	// Address is the pod address (ip:port) the server is reached at; a
	// Relay forwards it to the process's own port.
	Address string
	Class   SimClass
	// LoRAs are adapters it serves (loaded at start); MaxLoRAs how many
	// may run in one batch.
	LoRAs    []string
	MaxLoRAs int
	Seed     uint64
	// Log receives its output (nil: discarded).
	Log io.Writer
}

// Sim is a running llm-d-inference-sim reached through its relay.
type Sim struct {
	cmd    *exec.Cmd
	relay  *Relay
	Addr   string
	exited chan struct{}
	err    error
}

// StartSim starts the simulator on a free port of its own and a relay on
// o.Address, and waits until it answers /v1/models.
func StartSim(ctx context.Context, o SimOptions) (*Sim, error) {
	if err := o.Class.Validate(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("llm-d-inference-sim: %w (make reference-tools builds it)", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(o.Address)
	if err != nil {
		return nil, fmt.Errorf("llm-d-inference-sim: address %q: %w", o.Address, err)
	}
	s := &Sim{exited: make(chan struct{})}
	s.cmd = exec.Command(o.Binary, simArgs(o, ports[0])...)
	// POD_IP names the pod in its KV-cache events (none are sent: no
	// ZMQ endpoint).
	s.cmd.Env = append(os.Environ(), "POD_IP="+host)
	s.cmd.Stdout, s.cmd.Stderr = o.Log, o.Log
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("llm-d-inference-sim: start: %w", err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.exited) }()
	if s.relay, err = NewRelay(o.Address, local(ports[0])); err != nil {
		s.Stop()
		return nil, fmt.Errorf("llm-d-inference-sim: relay on %s: %w", o.Address, err)
	}
	s.Addr = s.relay.Addr()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.waitReady(rctx, o.Model); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func simArgs(o SimOptions, port int) []string {
	c := o.Class
	args := []string{
		"--port", fmt.Sprint(port), "--model", o.Model, "--force-dummy-tokenizer", "--mode", "random",
		"--max-num-seqs", fmt.Sprint(c.MaxNumSeqs), "--max-model-len", "8192",
		"--latency-calculator", "per-token",
		"--prefill-overhead", c.PrefillOverhead.String(), "--prefill-time-per-token", c.PrefillPerToken.String(),
		"--inter-token-latency", c.InterTokenLatency.String(),
		"--time-factor-under-load", fmt.Sprint(c.TimeFactorUnderLoad),
		"--enable-kvcache", "--kv-cache-size", fmt.Sprint(c.KVCacheBlocks), "--block-size", fmt.Sprint(c.BlockSize),
		"--zmq-endpoint", "", "--seed", fmt.Sprint(o.Seed),
	}
	if len(o.LoRAs) > 0 {
		var mods []string
		for _, name := range o.LoRAs {
			b, _ := json.Marshal(map[string]string{"name": name, "path": "/adapters/" + name, "base_model_name": o.Model})
			mods = append(mods, string(b))
		}
		args = append(args, "--max-loras", fmt.Sprint(max(o.MaxLoRAs, 1)), "--lora-modules")
		args = append(args, mods...)
	}
	return args
}

func (s *Sim) waitReady(ctx context.Context, model string) error {
	for {
		resp, err := http.Get("http://" + s.Addr + "/v1/models")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), model) {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("llm-d-inference-sim exited before it served: %v", s.err)
		case <-ctx.Done():
			return fmt.Errorf("llm-d-inference-sim on %s not ready: %w", s.Addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CPU is the processor time the simulator has used.
func (s *Sim) CPU() (time.Duration, error) { return ProcessCPU(s.cmd.Process.Pid) }

// Stop stops the relay and the simulator (SIGTERM, SIGKILL after 3 s).
func (s *Sim) Stop() {
	if s.relay != nil {
		_ = s.relay.Close()
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(3 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}
