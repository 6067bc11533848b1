//go:build cgo

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/headroom-dev/headroom/internal/testenv"
)

// chartRules renders the Helm chart's PrometheusRule with helm (built by
// `make chart-tools`) and writes its groups as a Prometheus rule file.
func chartRules(t *testing.T) string {
	t.Helper()
	root := testenv.ModuleDir(t, "github.com/headroom-dev/headroom")
	dir := os.Getenv("CHART_TOOLS_DIR")
	if dir == "" {
		dir = filepath.Join(root, ".cache", "chart-tools")
	}
	helm := filepath.Join(dir, "bin", "helm")
	chart := filepath.Join(root, "charts", "headroom")
	out, err := exec.Command(helm, "template", "headroom", chart, "-f", filepath.Join(chart, "ci", "default-values.yaml"),
		"--show-only", "templates/prometheusrule.yaml").Output()
	if err != nil {
		t.Fatalf("helm template (run `make chart-tools`): %v", err)
	}
	var rule struct {
		Spec struct {
			Groups []any `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(out, &rule); err != nil || len(rule.Spec.Groups) == 0 {
		t.Fatalf("the chart's PrometheusRule: %v (%d groups)", err, len(rule.Spec.Groups))
	}
	b, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "headroom-rules.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// ruleHealth returns each alerting rule's health and state.
func ruleHealth(base string) (map[string][2]string, error) {
	resp, err := http.Get(base + "/api/v1/rules?type=alert")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, State, LastError string
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	out := map[string][2]string{}
	for _, g := range r.Data.Groups {
		for _, x := range g.Rules {
			out[x.Name] = [2]string{x.Health + x.LastError, x.State}
		}
	}
	return out, nil
}

// checkRules waits until every rule of the chart has been evaluated
// without error against the live series and the alerts in want are in
// their wanted state, every other one inactive.
func checkRules(t *testing.T, prom string, want map[string]string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		rules, err := ruleHealth(prom)
		if err == nil {
			err = rulesAre(rules, want)
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert rules: %v (%v)", err, rules)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func rulesAre(rules map[string][2]string, want map[string]string) error {
	if len(rules) < 12 {
		return fmt.Errorf("%d alerting rules loaded, want the chart's 12", len(rules))
	}
	for name, hs := range rules {
		if hs[0] != "ok" {
			return fmt.Errorf("rule %s: health %q", name, hs[0])
		}
		state := want[name]
		if state == "" {
			state = "inactive"
		}
		if hs[1] != state {
			return fmt.Errorf("rule %s is %s, want %s", name, hs[1], state)
		}
	}
	return nil
}
