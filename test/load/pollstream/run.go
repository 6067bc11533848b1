package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/headroom-dev/headroom/test/load/loadutil"
)

// proc is a child process in one role.
type proc struct{ cmd *exec.Cmd }

func start(role string, args ...string) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.Stderr = os.Stderr
	return &proc{cmd: cmd}, nil
}

func (p *proc) stop() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }

func (p *proc) cpu() float64 {
	s, err := loadutil.CPUSeconds(p.cmd.Process.Pid)
	if err != nil {
		return 0
	}
	return s
}

// cores measures the CPU of procs over d, after warmup, in cores, and
// the rate of served scrapes.
func cores(o options, served func() float64, procs ...*proc) ([]float64, float64) {
	cpus := make([]func() float64, len(procs))
	for i, p := range procs {
		cpus[i] = p.cpu
	}
	return measure(o, served, cpus...)
}

// counter reads one unlabelled sample from a Prometheus text page (0 when
// absent).
func counter(url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

func fetchNumber(url string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	v, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	return v
}

func run(o options) error {
	srv, err := start("servers", strconv.Itoa(o.pods), o.body)
	if err != nil {
		return err
	}
	out, err := srv.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := srv.cmd.Start(); err != nil {
		return err
	}
	defer srv.stop()
	rd := bufio.NewReader(out)
	statsAddr, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("model servers: %w", err)
	}
	served := func() float64 { return fetchNumber("http://" + strings.TrimSpace(statsAddr)) }
	line, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("model servers: %w", err)
	}
	addrs := strings.TrimSpace(line)
	period := o.period.String()

	res := map[string]float64{}
	for _, mode := range []string{"poll-full", "poll-filtered"} {
		p, err := start(mode, period, addrs)
		if err != nil {
			return err
		}
		if err := p.cmd.Start(); err != nil {
			return err
		}
		c, rate := cores(o, served, p)
		res[mode], res[mode+"/rate"] = c[0], rate
		p.stop()
	}
	if o.epp != "" {
		c, rate, err := eppCores(o, strings.Split(addrs, ","), served)
		if err != nil {
			return fmt.Errorf("epp: %w", err)
		}
		res["epp"], res["epp/rate"] = c, rate
	}
	gp, _ := loadutil.FreePort()
	mp, _ := loadutil.FreePort()
	pickerAddr, metricsAddr := "127.0.0.1:"+strconv.Itoa(gp), "127.0.0.1:"+strconv.Itoa(mp)
	pk, _ := start("picker", pickerAddr, metricsAddr)
	ag, _ := start("agents", period, pickerAddr, strconv.Itoa(o.podsPerNode), addrs)
	for _, p := range []*proc{pk, ag} {
		if err := p.cmd.Start(); err != nil {
			return err
		}
		defer p.stop()
	}
	if err := loadutil.WaitReady("http://"+metricsAddr+"/metrics", 30*time.Second); err != nil {
		return err
	}
	reports := func() float64 {
		return counter("http://"+metricsAddr+"/metrics", "headroom_picker_reports_received_total")
	}
	c, rate := measure(o, served, pk.cpu, ag.cpu, reports)
	res["picker"], res["agents"], res["agents/rate"], res["picker/reports"] = c[0], c[1], rate, c[2]
	print(o, res)
	return nil
}

func print(o options, r map[string]float64) {
	nodes := (o.pods + o.podsPerNode - 1) / o.podsPerNode
	fmt.Printf("%d vLLM pods (%s, %d bytes each), every pod read every %s; %s measured per mode\n\n", o.pods, o.body, o.bodySize, o.period, o.duration)
	want := float64(o.pods) / o.period.Seconds()
	fmt.Printf("  %-52s %8s %18s\n", "mode", "cores", "scrapes/s served")
	fmt.Printf("  %-52s %8.3f %9.0f of %.0f\n", "poll, whole body parsed (as the EPP does), picker", r["poll-full"], r["poll-full/rate"], want)
	fmt.Printf("  %-52s %8.3f %9.0f of %.0f\n", "poll, headroom's filtered parser, picker", r["poll-filtered"], r["poll-filtered/rate"], want)
	if o.epp != "" {
		fmt.Printf("  %-52s %8.3f %9.0f of %.0f\n", "poll: the real GIE EPP (its process, from /proc)", r["epp"], r["epp/rate"], want)
	}
	fmt.Printf("  %-52s %8.3f   %.0f reports/s, %.0f µs of CPU a report\n", "stream: picker ingest", r["picker"], r["picker/reports"], 1e6*r["picker"]/max(r["picker/reports"], 1))
	fmt.Printf("  %-52s %8.3f %9.0f of %.0f\n", fmt.Sprintf("stream: %d node agents' scraping, summed", nodes), r["agents"], r["agents/rate"], want)
	fmt.Printf("\n  CPU per scrape: EPP way %.0f µs, filtered %.0f µs (a poller that cannot keep up is short by the missing scrapes)\n",
		r["poll-full"]/r["poll-full/rate"]*1e6, r["poll-filtered"]/r["poll-filtered/rate"]*1e6)
	fmt.Printf("  picker CPU, poll (EPP way) / stream:      %6.1fx\n", r["poll-full"]/r["picker"])
	fmt.Printf("  picker CPU, poll (filtered) / stream:     %6.1fx\n", r["poll-filtered"]/r["picker"])
	fmt.Printf("  all CPU, poll (EPP way) / stream total:   %6.1fx\n", r["poll-full"]/(r["picker"]+r["agents"]))
	if o.epp != "" {
		fmt.Printf("  picker CPU / real EPP CPU:                %8.4f (1/%.0f)\n", r["picker"]/r["epp"], r["epp"]/r["picker"])
		fmt.Printf("  (agents + picker) CPU / real EPP CPU:     %8.4f (1/%.1f)\n", (r["picker"]+r["agents"])/r["epp"], r["epp"]/(r["picker"]+r["agents"]))
	}
}
