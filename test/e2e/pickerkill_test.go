//go:build cgo

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testenv"
	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// buildPicker builds cmd/headroom-picker into dir.
func buildPicker(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "headroom-picker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/headroom-picker")
	cmd.Dir = testenv.ModuleDir(t, "github.com/headroom-dev/headroom")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/headroom-picker: %v\n%s", err, out)
	}
	return bin
}

// pickerProcs starts n picker processes routing to the endpoints.
func pickerProcs(t *testing.T, bin string, n int, procs *[]*exec.Cmd) func([]string) ([]cluster.ExternalPicker, error) {
	return func(endpoints []string) ([]cluster.ExternalPicker, error) {
		var out []cluster.ExternalPicker
		for i := range n {
			p := cluster.ExternalPicker{Ingest: freePort(t), ExtProc: freePort(t), Metrics: freePort(t)}
			cmd := exec.Command(bin, "--name", "picker-"+string(rune('0'+i)), "--ingest.auth", "insecure",
				"--ingest.listen-address", p.Ingest, "--extproc.listen-address", p.ExtProc, "--metrics.listen-address", p.Metrics,
				"--health.listen-address", freePort(t), "--endpoints", strings.Join(endpoints, ","), "--shutdown.drain-delay", "0s", "--log-level", "warn")
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			*procs = append(*procs, cmd)
			out = append(out, p)
		}
		return out, nil
	}
}

// TestPickerSIGKILLUnderLoad kills one of two picker processes with
// SIGKILL while requests stream through the gateway. Requests whose
// ext_proc stream was on the killed replica at that moment fail, as they
// would behind Envoy; every request that starts a second after the kill
// is routed by the other replica.
func TestPickerSIGKILLUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the picker and runs the whole system")
	}
	var procs []*exec.Cmd
	o := cluster.DefaultOptions()
	o.Nodes = []cluster.NodeSpec{{System: "dgxh100", Server: "h100", GPUs: 4}}
	o.ExternalPickers = pickerProcs(t, buildPicker(t, t.TempDir()), 2, &procs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := cluster.StartReady(ctx, o, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lo := loadgen.DefaultOptions()
	lo.URL, lo.Rate, lo.Duration, lo.Drain = c.URL, 10, 8*time.Second, 30*time.Second
	lo.Mix.OutputMax = 32
	g, err := loadgen.New(lo)
	if err != nil {
		t.Fatal(err)
	}
	var killedAt, atKill atomic.Int64
	go func() {
		time.Sleep(3 * time.Second)
		atKill.Store(int64(g.InFlight()))
		killedAt.Store(time.Now().UnixNano())
		_ = procs[0].Process.Kill() // SIGKILL
	}()
	recs := g.Run(ctx, nil)
	kill, inFlightAtKill := time.Unix(0, killedAt.Load()), int(atKill.Load())
	var failed, failedLate, late int
	for _, r := range recs {
		if r.Start.After(kill.Add(time.Second)) {
			late++
		}
		if !r.OK() {
			failed++
			if r.Start.After(kill.Add(time.Second)) {
				failedLate++
				t.Errorf("request started %v after the kill failed: %s", r.Start.Sub(kill), r.Err)
			}
		}
	}
	t.Logf("%d requests, %d failed (%d in flight at the kill), %d started a second or more after it, gateway picker errors %d",
		len(recs), failed, inFlightAtKill, late, c.Gateway.Stats().PickerErrors)
	if late < 20 {
		t.Errorf("only %d requests started after the kill; the test proves nothing", late)
	}
	if failed > inFlightAtKill+2 {
		t.Errorf("%d requests failed, more than the %d in flight when the replica died", failed, inFlightAtKill)
	}
}
