package exporter

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDocsMatchCatalogue keeps docs/metrics.md and the code in step: every
// metric in the catalogue has a row with the same type, labels and source,
// and every documented metric exists.
func TestDocsMatchCatalogue(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `headroom_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 6 {
			t.Errorf("short row: %s", line)
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if _, dup := documented[name]; dup {
			t.Errorf("%s documented twice", name)
		}
		documented[name] = []string{strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3]), strings.TrimSpace(cells[4])}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, m := range Catalogue() {
		doc, ok := documented[m.Name]
		if !ok {
			t.Errorf("%s is not in docs/metrics.md", m.Name)
			continue
		}
		delete(documented, m.Name)
		want := []string{m.Type, strings.Join(m.Labels, ", "), m.Source}
		if !slices.Equal(doc, want) {
			t.Errorf("%s: docs say type/labels/source %q, code has %q", m.Name, doc, want)
		}
	}
	for name := range documented {
		t.Errorf("%s is documented but the exporter has no such metric", name)
	}
}
