//go:build cgo

// Package e2e holds whole-system tests with real servers: a running
// simulated system (sim/cluster: agents, picker replicas, a gateway and
// model servers) scraped by a real Prometheus (Debian's package), queried
// through its HTTP API.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/sim/cluster"
	"github.com/headroom-dev/headroom/sim/loadgen"
)

// prometheusBinary finds Prometheus: $PROMETHEUS, else prometheus on the
// PATH. A missing binary fails the test: CI installs it (.ci/run).
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMETHEUS"); p != "" {
		return p
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: install it (apt-get install prometheus, as .ci/run does) or set PROMETHEUS")
	}
	return p
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPrometheus runs Prometheus scraping the agents and pickers every
// 500 ms, evaluating the alert rules in the rules file, and returns its
// base URL. Targets get the labels the chart's ServiceMonitors give them
// in a cluster: the agent's own labels win (honor_labels), each picker
// has its pod and namespace.
func startPrometheus(t *testing.T, agents, pickers []string, rules string) string {
	t.Helper()
	bin, dir := prometheusBinary(t), t.TempDir()
	var pickerTargets []string
	for i, p := range pickers {
		pickerTargets = append(pickerTargets, fmt.Sprintf("{targets: [%q], labels: {pod: headroom-picker-%d, namespace: gpu}}", p, i))
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 500ms, scrape_timeout: 400ms, evaluation_interval: 500ms}
rule_files: [%q]
scrape_configs:
- job_name: headroom-agent
  honor_labels: true
  static_configs: [{targets: [%s]}]
- job_name: headroom-picker
  static_configs: [%s]
`, rules, quoteAll(agents), strings.Join(pickerTargets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	return "http://" + addr
}

func quoteAll(addrs []string) string {
	q := make([]string, len(addrs))
	for i, a := range addrs {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, ", ")
}

// query runs an instant query and returns each series' labels and value.
func query(base, q string) ([]sample, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	out := make([]sample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		v, _ := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
		out = append(out, sample{labels: s.Metric, value: v})
	}
	return out, nil
}

type sample struct {
	labels map[string]string
	value  float64
}

// eventually polls query until check accepts its result.
func eventually(t *testing.T, base, q string, within time.Duration, check func([]sample) error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s, err := query(base, q)
		if err == nil {
			if err = check(s); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", q, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func startSystem(t *testing.T) *cluster.Cluster {
	t.Helper()
	o := cluster.DefaultOptions()
	o.Nodes = []cluster.NodeSpec{{System: "dgxh100", Server: "h100", GPUs: 2}, {System: "dgxa100", Server: "a100", GPUs: 2}}
	c, err := cluster.StartReady(context.Background(), o, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func sendLoad(t *testing.T, c *cluster.Cluster, n int) {
	t.Helper()
	lo := loadgen.DefaultOptions()
	lo.URL, lo.Rate, lo.Duration = c.URL, 20, time.Second
	lo.Mix.OutputMax = 16
	g, err := loadgen.New(lo)
	if err != nil {
		t.Fatal(err)
	}
	recs := g.Burst(context.Background(), n, nil)
	if s := loadgen.Summarize(recs, 0); s.OK != n {
		t.Fatalf("load: %d of %d requests succeeded: %v", s.OK, n, s.Errors)
	}
}
