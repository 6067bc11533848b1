//go:build cgo

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/internal/testenv"
)

// energyPanelQueries returns the PromQL of the VRAM dashboard's energy
// panels, its variables filled for every node and GPU.
func energyPanelQueries(t *testing.T) map[string]string {
	t.Helper()
	root := testenv.ModuleDir(t, "github.com/headroom-dev/headroom")
	b, err := os.ReadFile(filepath.Join(root, "charts", "headroom", "files", "dashboards", "vram-overhead.json"))
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
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	fill := strings.NewReplacer(`"$node"`, `".*"`, `"$gpu"`, `".*"`, "$__rate_interval", "10s")
	out := map[string]string{}
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "energy") {
				out[p.Title] = fill.Replace(tg.Expr)
			}
		}
	}
	if len(out) != 4 {
		t.Fatalf("found %d energy panels, want 4: %v", len(out), out)
	}
	return out
}

// checkEnergyPanels: every energy panel of the dashboard returns series
// on the running system (the simulator moves the energy counters and the
// model servers count their tokens).
func checkEnergyPanels(t *testing.T, prom string, within time.Duration) {
	t.Helper()
	for title, q := range energyPanelQueries(t) {
		eventually(t, prom, q, within, func(s []sample) error {
			if len(s) == 0 {
				return fmt.Errorf("panel %q returns no series", title)
			}
			return nil
		})
	}
}
