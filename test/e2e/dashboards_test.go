//go:build cgo

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testenv"
)

// dashboardExempt are the panels that cannot have data on the simulated
// system, each with the reason. Every other query of every dashboard must
// return series from the running system.
func dashboardExempt() map[string]string {
	const ztunnel = "needs ztunnel and its eBPF programs on a real node (the simulated nodes run no ztunnel; its collector is exercised by collector/ztunnel and bpf/ on this kernel, not in this system)"
	return map[string]string{
		"ztunnel memory per node":         ztunnel,
		"ztunnel CPU per node":            ztunnel,
		"ztunnel traffic per GPU pod":     ztunnel,
		"ztunnel CPU per pod (estimated)": ztunnel,
		"ztunnel connections per GPU pod": ztunnel,
	}
}

// panelQuery is one query of one panel.
type panelQuery struct {
	dashboard, panel, expr string
}

type grafanaPanel struct {
	Title   string         `json:"title"`
	Panels  []grafanaPanel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

type grafanaVariable struct {
	Name, Type, Definition, AllValue string
	Current                          struct {
		Value any `json:"value"`
	} `json:"current"`
}

// dashboards reads every dashboard of the chart: its panels' queries and
// its template variables.
func dashboards(t *testing.T) ([]panelQuery, map[string][]grafanaVariable) {
	t.Helper()
	root := testenv.ModuleDir(t, "github.com/headroom-dev/headroom")
	paths, _ := filepath.Glob(filepath.Join(root, "charts", "headroom", "files", "dashboards", "*.json"))
	if len(paths) == 0 {
		t.Fatal("no dashboards in charts/headroom/files/dashboards")
	}
	var queries []panelQuery
	vars := map[string][]grafanaVariable{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels     []grafanaPanel `json:"panels"`
			Templating struct {
				List []grafanaVariable `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		name := filepath.Base(p)
		vars[name] = d.Templating.List
		var walk func([]grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, pn := range ps {
				for _, tg := range pn.Targets {
					queries = append(queries, panelQuery{dashboard: name, panel: pn.Title, expr: tg.Expr})
				}
				walk(pn.Panels)
			}
		}
		walk(d.Panels)
	}
	return queries, vars
}

var reVar = regexp.MustCompile(`\$(__rate_interval|__interval|__range|\w+)`)

// substitute replaces Grafana's variables as Grafana would with every
// variable at its default: "All" becomes its allValue, a custom variable
// its current value; $__rate_interval is 5s, four times this
// Prometheus's scrape interval with room to spare.
func substitute(expr string, vars []grafanaVariable) (string, error) {
	values := map[string]string{"__rate_interval": "5s", "__interval": "1s", "__range": "1m"}
	for _, v := range vars {
		cur := fmt.Sprint(v.Current.Value)
		if cur == "$__all" || cur == "[$__all]" {
			cur = v.AllValue
		}
		values[v.Name] = cur
	}
	var missing []string
	out := reVar.ReplaceAllStringFunc(expr, func(m string) string {
		if v, ok := values[m[1:]]; ok && v != "" {
			return v
		}
		missing = append(missing, m)
		return m
	})
	if len(missing) > 0 {
		return out, fmt.Errorf("no value for %v", missing)
	}
	return out, nil
}

var reLabelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*(\w+)\s*\)\s*$`)

// labelValues runs a Grafana label_values(selector, label) variable query
// through Prometheus's label values API.
func labelValues(base, def string, vars []grafanaVariable) ([]string, error) {
	m := reLabelValues.FindStringSubmatch(def)
	if m == nil {
		return nil, fmt.Errorf("not a label_values query: %q", def)
	}
	sel, err := substitute(m[1], vars)
	if err != nil {
		return nil, err
	}
	resp, err := http.Get(base + "/api/v1/label/" + m[2] + "/values?match[]=" + url.QueryEscape(sel))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Data   []string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", def, r.Error)
	}
	return r.Data, nil
}

// checkDashboards evaluates every panel query of the chart's dashboards
// against the running system through the real Prometheus: each must parse
// and return at least one series (panels that can have data only on real
// hardware are listed in dashboardExempt, with the reason), and every
// template variable's query must return values.
func checkDashboards(t *testing.T, prom string, within time.Duration) {
	t.Helper()
	queries, vars := dashboards(t)
	exempt := dashboardExempt()
	for dash, vs := range vars {
		for _, v := range vs {
			if v.Type != "query" {
				continue
			}
			eventuallyOK(t, within, dash+" variable $"+v.Name, func() error {
				vals, err := labelValues(prom, v.Definition, vs)
				if err == nil && len(vals) == 0 {
					err = fmt.Errorf("%s returns no values", v.Definition)
				}
				return err
			})
		}
	}
	seen := map[string]bool{}
	for _, q := range queries {
		seen[q.panel] = true
		expr, err := substitute(q.expr, vars[q.dashboard])
		if err != nil {
			t.Errorf("%s %q: %v", q.dashboard, q.panel, err)
			continue
		}
		if reason, ok := exempt[q.panel]; ok {
			// Exempt panels must still be valid PromQL.
			if _, err := query(prom, expr); err != nil {
				t.Errorf("%s %q (exempt: %s): %v", q.dashboard, q.panel, reason, err)
			}
			continue
		}
		eventuallyOK(t, within, fmt.Sprintf("%s %q: %s", q.dashboard, q.panel, expr), func() error {
			s, err := query(prom, expr)
			if err == nil && len(s) == 0 {
				err = fmt.Errorf("no series")
			}
			return err
		})
	}
	var stale []string
	for p := range exempt {
		if !seen[p] {
			stale = append(stale, p)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("exempt panels no dashboard has (remove them from dashboardExempt): %s", strings.Join(stale, ", "))
	}
}

// eventuallyOK retries f until it succeeds or within has passed, then
// fails the test (and goes on with the next query).
func eventuallyOK(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %v", what, err)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}
