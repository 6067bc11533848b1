package chart

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// renderedRules renders the chart's PrometheusRule with the default values
// (release "headroom") and returns its rule groups as a Prometheus rule file.
func renderedRules(t *testing.T, tl Tools) map[string]any {
	t.Helper()
	rules := ofKind(render(t, tl, "-f", filepath.Join(tl.Chart, "ci", "default-values.yaml")), "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("rendered %d PrometheusRules, want 1", len(rules))
	}
	spec, _ := rules[0]["spec"].(map[string]any)
	return map[string]any{"groups": spec["groups"]}
}

// alertNames lists the alerts of a rule file.
func alertNames(file map[string]any) []string {
	var names []string
	groups, _ := file["groups"].([]any)
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			if name, ok := r.(map[string]any)["alert"].(string); ok {
				names = append(names, name)
			}
		}
	}
	return names
}

// TestRules checks the rendered alert rules with promtool and runs
// testdata/rules_test.yaml against them: series that fire each alert, and
// series that must not.
func TestRules(t *testing.T) {
	tl := tools(t)
	file := renderedRules(t, tl)
	dir := t.TempDir()
	b, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, nil, tl.Promtool, "check", "rules", rulesPath)

	tests, err := os.ReadFile(filepath.Join("testdata", "rules_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	testsPath := filepath.Join(dir, "rules_test.yaml")
	if err := os.WriteFile(testsPath, tests, 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, nil, tl.Promtool, "test", "rules", testsPath)

	// Every alert has a case where it fires and one where it does not.
	var suite struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(tests, &suite); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range suite.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, name := range alertNames(file) {
		if !fires[name] || !quiet[name] {
			t.Errorf("alert %s: testdata/rules_test.yaml needs a case where it fires and one where it does not (fires %v, quiet %v)", name, fires[name], quiet[name])
		}
	}
}
