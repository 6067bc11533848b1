package modelserver

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/snapshot"
)

func TestParseEndpoints(t *testing.T) {
	t.Parallel()
	got, err := ParseEndpoints(" name=vllm-0,endpoint=10.0.0.5:8000,engine=vllm,gpus=0;1,metrics=http://10.0.0.5:9090/stats\n" +
		"name=sg,endpoint=[fd00::7]:30000,engine=sglang\tname=trt,endpoint=10.0.0.6:8000,engine=trtllm-serve,gpus=GPU-abc ")
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{Name: "vllm-0", IP: "10.0.0.5", Port: 8000, Engine: VLLM, GPUs: []string{"0", "1"}, MetricsURL: "http://10.0.0.5:9090/stats"},
		{Name: "sg", IP: "fd00::7", Port: 30000, Engine: SGLang, MetricsURL: "http://[fd00::7]:30000/metrics"},
		{Name: "trt", IP: "10.0.0.6", Port: 8000, Engine: TRTLLM, GPUs: []string{"GPU-abc"}, MetricsURL: "http://10.0.0.6:8000/prometheus/metrics"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if eps, err := ParseEndpoints("   "); err != nil || len(eps) != 0 {
		t.Errorf("empty: %v, %v", eps, err)
	}
}

// TestParseEndpointsErrors: every kind of bad entry is reported, all of
// them at once.
func TestParseEndpointsErrors(t *testing.T) {
	t.Parallel()
	cases := []struct{ entry, want string }{
		{"endpoint=10.0.0.5:8000", `name ""`},
		{"name=a/b,endpoint=10.0.0.5:8000", `name "a/b"`},
		{"name=a", "endpoint (IP:port) is missing"},
		{"name=a,endpoint=10.0.0.5", "missing port"},
		{"name=a,endpoint=vllm.local:8000", "not an IP address"},
		{"name=a,endpoint=10.0.0.5:0", "not in 1-65535"},
		{"name=a,endpoint=10.0.0.5:http", "not in 1-65535"},
		{"name=a,endpoint=10.0.0.5:8000,engine=tgi", `engine "tgi"`},
		{"name=a,endpoint=10.0.0.5:8000,gpus=0;x", `gpu "x"`},
		{"name=a,endpoint=10.0.0.5:8000,gpus=-1", `gpu "-1"`},
		{"name=a,endpoint=10.0.0.5:8000,metrics=ftp://h/m", `scheme "ftp"`},
		{"name=a,endpoint=10.0.0.5:8000,metrics=http:///m", "no host"},
		{"name=a,endpoint=10.0.0.5:8000,port=1", `unknown key "port"`},
		{"name=a,name=b,endpoint=10.0.0.5:8000", "name given twice"},
		{"name=a,endpoint", `field "endpoint" is not key=value`},
	}
	var all []string
	for _, c := range cases {
		all = append(all, c.entry)
		_, err := ParseEndpoints(c.entry)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.entry, err, c.want)
		}
	}
	_, err := ParseEndpoints(strings.Join(all, " "))
	if err == nil {
		t.Fatal("no error for a list of bad entries")
	}
	for _, c := range cases {
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("the joined error lacks %q", c.want)
		}
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "endpoints.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseEndpointsFile(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `{"endpoints": [
		{"name": "vllm-0", "endpoint": "10.0.0.5:8000", "gpus": [0, "1", "MIG-abc"]},
		{"name": "tri", "endpoint": "10.0.0.7:8001", "engine": "triton", "metrics": "http://10.0.0.7:8002/metrics"}
	]}`)
	got, err := ParseEndpointsFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Endpoint{
		{Name: "vllm-0", IP: "10.0.0.5", Port: 8000, Engine: VLLM, GPUs: []string{"0", "1", "MIG-abc"}, MetricsURL: "http://10.0.0.5:8000/metrics"},
		{Name: "tri", IP: "10.0.0.7", Port: 8001, Engine: Triton, MetricsURL: "http://10.0.0.7:8002/metrics"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseEndpointsFileErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, content, want string }{
		{"unknown field", `{"endpoints": [{"name": "a", "endpoint": "10.0.0.5:8000", "port": 1}]}`, `unknown field "port"`},
		{"unknown top-level field", `{"targets": []}`, `unknown field "targets"`},
		{"not JSON", `name=a,endpoint=10.0.0.5:8000`, "invalid character"},
		{"trailing data", `{"endpoints": []} {}`, "data after the JSON object"},
		{"bad gpu type", `{"endpoints": [{"name": "a", "endpoint": "10.0.0.5:8000", "gpus": [true]}]}`, "want an index or a UUID"},
		{"bad entries", `{"endpoints": [{"name": "a"}, {"name": "b", "endpoint": "10.0.0.5:8000", "engine": "x"}]}`, `endpoint 2 ("b"): engine "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseEndpointsFile(writeFile(t, tc.content))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseEndpointsFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestValidateOptions(t *testing.T) {
	t.Parallel()
	file := writeFile(t, `{"endpoints": [{"name": "dup", "endpoint": "10.0.0.9:8000"}]}`)
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	o = Options{Interval: time.Millisecond, Timeout: -1, DefaultPort: 70000,
		Endpoints: "name=dup,endpoint=10.0.0.5:8000 name=bad", EndpointsFile: file}
	err := o.Validate()
	for _, want := range []string{"--modelserver.interval", "--modelserver.timeout", "--modelserver.default-port", "entry 2", `"dup" is listed twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	for _, tc := range []struct {
		o    Options
		want time.Duration
	}{
		{Options{Interval: 100 * time.Millisecond}, 80 * time.Millisecond},
		{Options{Interval: 20 * time.Millisecond}, MinTimeout},
		{Options{Interval: time.Second, Timeout: 300 * time.Millisecond}, 300 * time.Millisecond},
	} {
		if got := tc.o.EffectiveTimeout(); got != tc.want {
			t.Errorf("%+v: timeout %s, want %s", tc.o, got, tc.want)
		}
	}
}

// TestAddStandalone: endpoints become pods, GPUs resolved by index, GPU
// UUID or MIG UUID; a GPU not on the node is left out and logged once.
func TestAddStandalone(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	eps := []Endpoint{
		{Name: "z-last", IP: "10.0.0.5", Port: 8000, Engine: VLLM, GPUs: []string{"1", "GPU-b", "MIG-b1", "7"}},
		{Name: "a-first", IP: "10.0.0.6", Port: 8001, Engine: SGLang, GPUs: []string{"GPU-a"}},
	}
	once := newOnceLog()
	for range 2 {
		snap := &snapshot.Snapshot{
			GPUs:        []snapshot.GPU{{Index: 0, UUID: "GPU-a"}, {Index: 1, UUID: "GPU-b", MIG: []snapshot.MIGDevice{{UUID: "MIG-b1"}}}},
			Attribution: &snapshot.Attribution{Pods: []snapshot.Pod{{UID: "u", Namespace: "llm", Name: "k8s"}}},
		}
		pods := addStandalone(snap.Attribution.Pods, snap.GPUs, eps, once, logger)
		if len(snap.Attribution.Pods) != 1 {
			t.Fatalf("the snapshot's pods were changed: %+v", snap.Attribution.Pods)
		}
		if len(pods) != 3 || pods[0].Name != "a-first" || pods[1].Name != "z-last" || pods[2].Name != "k8s" {
			t.Fatalf("pods %+v", pods)
		}
		z := pods[1]
		if z.IP != "10.0.0.5" || z.Port != 8000 || z.Engine != "vllm" || !reflect.DeepEqual(z.GPUs, []string{"GPU-b"}) || Key(&z) != "standalone/z-last" {
			t.Errorf("standalone pod %+v", z)
		}
	}
	if n := strings.Count(logs.String(), "not on this node"); n != 1 {
		t.Errorf("the missing GPU was logged %d times over two ticks, want 1:\n%s", n, logs.String())
	}
}
