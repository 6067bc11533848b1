package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// external are the metrics the rules read that headroom does not serve,
// each with where it comes from.
var external = map[string]string{
	"up":                           "Prometheus, one per scrape target",
	"kube_node_status_allocatable": "kube-state-metrics (HeadroomAgentMissing; monitoring.prometheusRule.kubeStateMetrics)",
}

var (
	reString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	reSelector = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reVariable = regexp.MustCompile(`\$\{?\w+\}?`)
	reToken    = regexp.MustCompile(`[A-Za-z0-9_:.]+`)
	reLabelVal = regexp.MustCompile(`^\s*label_values\((.*),\s*\w+\s*\)\s*$`)
	keywords   = []string{"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// metricNames returns the metric names a PromQL expression (or a Grafana
// label_values query) reads: identifiers that are not functions,
// keywords, labels or values.
func metricNames(expr string) []string {
	if m := reLabelVal.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = reString.ReplaceAllString(expr, " ")
	expr = reSelector.ReplaceAllString(expr, " ")
	expr = reGrouping.ReplaceAllString(expr, " ")
	expr = reVariable.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range reToken.FindAllStringIndex(expr, -1) {
		tok := expr[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || strings.Contains(tok, ".") || slices.Contains(keywords, strings.ToLower(tok)) {
			continue
		}
		if rest := strings.TrimLeft(expr[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		names = append(names, tok)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ expr, want string }{
		{`up{job="a"} == 0`, "up"},
		{`sum by (node, gpu) (rate(a_total{x=~"1|2"}[5m])) / ignoring(x) group_left(y) b > 0.05`, "a_total b"},
		{`time() - headroom_agent_last_sample_timestamp_seconds > 30`, "headroom_agent_last_sample_timestamp_seconds"},
		{`histogram_quantile(0.99, sum by (le) (rate(h_bucket{pod=~"$pod"}[$__rate_interval])))`, "h_bucket"},
		{`x unless x offset 10m or on (node) max by (node) (y) * $ctx_mib * 1048576`, "x x y"},
		{`label_values(headroom_gpu_info{node=~"$node"}, gpu)`, "headroom_gpu_info"},
	} {
		if got := strings.Join(metricNames(tt.expr), " "); got != tt.want {
			t.Errorf("metricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// documented returns the metric names docs/metrics.md, docs/picker.md and
// docs/telemetry.md list (a code span starting with headroom_).
func documented(t *testing.T, root string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile("`(headroom_[a-z0-9_]+)")
	names := map[string]bool{}
	for _, doc := range []string{"metrics.md", "picker.md", "telemetry.md"} {
		b, err := os.ReadFile(filepath.Join(root, "docs", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names[m[1]] = true
		}
	}
	return names
}

func isDocumented(name string, docs map[string]bool) bool {
	if docs[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && docs[base] {
			return true
		}
	}
	return false
}

// dashboardExprs returns every query of a Grafana dashboard, by panel title.
func dashboardExprs(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	exprs := map[string][]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs["panel "+p.Title] = append(exprs["panel "+p.Title], tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			exprs["variable "+v.Name] = append(exprs["variable "+v.Name], v.Definition)
		}
	}
	return exprs
}

// TestDashboardMetricsDocumented: no panel reads a metric that headroom
// does not document, so none can stay empty for want of a series.
func TestDashboardMetricsDocumented(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	docs := documented(t, root)
	paths, _ := filepath.Glob(filepath.Join(root, "charts", "headroom", "files", "dashboards", "*.json"))
	if len(paths) == 0 {
		t.Fatal("no dashboards")
	}
	for _, path := range paths {
		for where, exprs := range dashboardExprs(t, path) {
			for _, e := range exprs {
				checkNames(t, filepath.Base(path)+" "+where, e, docs)
			}
		}
	}
}

// TestRuleMetricsDocumented does the same for the alert rules.
func TestRuleMetricsDocumented(t *testing.T) {
	tl := tools(t)
	docs := documented(t, tl.Root)
	file := renderedRules(t, tl)
	for _, g := range file["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			checkNames(t, "alert "+rule["alert"].(string), rule["expr"].(string), docs)
		}
	}
}

func checkNames(t *testing.T, where, expr string, docs map[string]bool) {
	t.Helper()
	names := metricNames(expr)
	if len(names) == 0 {
		t.Errorf("%s: no metric in %q", where, expr)
	}
	for _, n := range names {
		if _, ok := external[n]; !ok && !isDocumented(n, docs) {
			t.Errorf("%s reads %s, which docs/metrics.md, picker.md and telemetry.md do not list", where, n)
		}
	}
}

// TestDashboardPanelsListed: the chart README lists every panel of every
// dashboard.
func TestDashboardPanelsListed(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	readme, err := os.ReadFile(filepath.Join(root, "charts", "headroom", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	paths, _ := filepath.Glob(filepath.Join(root, "charts", "headroom", "files", "dashboards", "*.json"))
	var missing []string
	for _, path := range paths {
		for where := range dashboardExprs(t, path) {
			if title, ok := strings.CutPrefix(where, "panel "); ok && !strings.Contains(string(readme), "**"+title+"**") {
				missing = append(missing, filepath.Base(path)+": "+title)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("charts/headroom/README.md does not list these panels (as **title**):\n%s", strings.Join(missing, "\n"))
	}
}
