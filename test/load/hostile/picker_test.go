package hostile

import (
	"bufio"
	"cmp"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testenv"
	"github.com/headroom-dev/headroom/test/load/loadutil"
)

// pickerProc is the headroom-picker process under test.
type pickerProc struct {
	cmd                           *exec.Cmd
	ingest, extproc, metrics, hlt string
}

// pickerBinary is HEADROOM_HOSTILE_PICKER, or cmd/headroom-picker built
// into a temporary directory.
func pickerBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("HEADROOM_HOSTILE_PICKER"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "headroom-picker")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/headroom-picker")
	cmd.Dir = testenv.ModuleDir(t, "github.com/headroom-dev/headroom")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/headroom-picker: %v\n%s", err, out)
	}
	return bin
}

// startPicker runs the picker on loopback ports with the production
// defaults of the request path, plus extra flags (pool, ingest auth).
func startPicker(t *testing.T, extra ...string) *pickerProc {
	t.Helper()
	port := func() string {
		p, err := loadutil.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(p)
	}
	p := &pickerProc{ingest: port(), extproc: port(), metrics: port(), hlt: port()}
	args := append([]string{"--name", "hostile", "--log-level", "warn",
		"--ingest.listen-address", p.ingest, "--extproc.listen-address", p.extproc,
		"--metrics.listen-address", p.metrics, "--health.listen-address", p.hlt,
		"--shutdown.drain-delay", "0s"}, extra...)
	p.cmd = exec.Command(pickerBinary(t), args...)
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	if err := loadutil.WaitReady("http://"+p.metrics+"/healthz", time.Minute); err != nil {
		t.Fatal(err)
	}
	return p
}

// rss is the picker's resident set now, MiB.
func (p *pickerProc) rss(t *testing.T) float64 {
	t.Helper()
	v, err := loadutil.RSSMiB(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// cpuMeter starts measuring the picker's CPU; the returned function says
// how many cores it used on average since.
func (p *pickerProc) cpuMeter(t *testing.T) func() float64 {
	t.Helper()
	c0, err := loadutil.CPUSeconds(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	return func() float64 {
		c1, err := loadutil.CPUSeconds(p.cmd.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		return (c1 - c0) / time.Since(t0).Seconds()
	}
}

// sampleRSS samples the RSS every 50 ms until the returned function is
// called, which returns the highest sample.
func (p *pickerProc) sampleRSS() func() float64 {
	var (
		mu   sync.Mutex
		peak float64
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if v, err := loadutil.RSSMiB(p.cmd.Process.Pid); err == nil {
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// scrape returns the picker's /metrics samples whose series starts with
// one of prefixes, by full series text (name and labels).
func (p *pickerProc) scrape(t *testing.T, prefixes ...string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, pre := range prefixes {
			if strings.HasPrefix(line, pre) {
				i := strings.LastIndexByte(line, ' ')
				if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
					out[line[:i]] = v
				}
			}
		}
	}
	return out
}

// sum adds the samples of m whose series contains every part.
func sum(m map[string]float64, parts ...string) float64 {
	total := 0.0
	for k, v := range m {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(k, p)
		}
		if ok {
			total += v
		}
	}
	return total
}

// settled waits until no stream, buffered byte or in-flight request is
// left on the picker, and returns how long that took and what was left
// when patience ran out.
func (p *pickerProc) settled(t *testing.T, patience time.Duration) (time.Duration, string) {
	t.Helper()
	start := time.Now()
	for {
		m := p.scrape(t, "headroom_picker_extproc_streams", "headroom_picker_extproc_buffered_bytes", "headroom_picker_endpoint_inflight")
		streams, buffered, inflight := sum(m, "headroom_picker_extproc_streams"), sum(m, "headroom_picker_extproc_buffered_bytes"), sum(m, "headroom_picker_endpoint_inflight")
		if streams == 0 && buffered == 0 && inflight == 0 {
			return time.Since(start), ""
		}
		if time.Since(start) > patience {
			return time.Since(start), fmt.Sprintf("%.0f streams, %.0f bytes buffered, %.0f in flight", streams, buffered, inflight)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// decisionMeter starts reading the picker's own decision histogram
// (headroom_picker_decision_duration_seconds: scoring and picking); the
// returned function gives the 99th percentile of the decisions since, as
// the upper bound of its bucket.
func (p *pickerProc) decisionMeter(t *testing.T) func() time.Duration {
	t.Helper()
	const family = "headroom_picker_decision_duration_seconds_bucket"
	before := p.scrape(t, family)
	return func() time.Duration {
		after := p.scrape(t, family)
		type bucket struct{ le, n float64 }
		var bs []bucket
		for k, v := range after {
			_, le, ok := strings.Cut(k, `le="`)
			if !ok {
				continue
			}
			le = strings.TrimSuffix(le, `"}`)
			bound, err := strconv.ParseFloat(le, 64)
			if err != nil {
				continue // +Inf
			}
			bs = append(bs, bucket{bound, v - before[k]})
		}
		slices.SortFunc(bs, func(a, b bucket) int { return cmp.Compare(a.le, b.le) })
		total := sum(after, family, `le="+Inf"`) - sum(before, family, `le="+Inf"`)
		for _, b := range bs {
			if total > 0 && b.n >= 0.99*total {
				return time.Duration(b.le * float64(time.Second))
			}
		}
		return -1 // past the last bucket
	}
}
