package chart

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// valuePaths walks values.yaml with the schema beside it and returns the
// paths a user sets: scalars, lists, and free-form maps (labels,
// resources…) as a whole. A closed object (additionalProperties: false)
// is walked into.
func valuePaths(prefix string, values any, schema map[string]any, into map[string]bool) {
	m, isMap := values.(map[string]any)
	closed := schema["additionalProperties"] == false
	if !isMap || !closed {
		into[prefix] = true
		return
	}
	props, _ := schema["properties"].(map[string]any)
	for k, v := range m {
		sub, _ := props[k].(map[string]any)
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		valuePaths(path, v, sub, into)
	}
}

// TestValuesDocumented: the chart README's values table names every value
// of values.yaml, and names no value that is not there.
func TestValuesDocumented(t *testing.T) {
	t.Parallel()
	chart := filepath.Join(repoRoot(t), "charts", "headroom")
	var values map[string]any
	var schema map[string]any
	read := func(name string, into any, unmarshal func([]byte, any) error) {
		b, err := os.ReadFile(filepath.Join(chart, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	read("values.yaml", &values, func(b []byte, v any) error { return yaml.Unmarshal(b, v) })
	read("values.schema.json", &schema, json.Unmarshal)
	want := map[string]bool{}
	valuePaths("", values, schema, want)

	readme, err := os.ReadFile(filepath.Join(chart, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The rows of the "## Values" section.
	_, section, ok := strings.Cut(string(readme), "\n## Values\n")
	if !ok {
		t.Fatal("charts/headroom/README.md has no \"## Values\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.]+)` \\|")
	got := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		got[m[1]] = true
	}
	var missing, stale []string
	for p := range want {
		if !got[p] {
			missing = append(missing, p)
		}
	}
	for p := range got {
		if !want[p] {
			stale = append(stale, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("values missing from the README's values table (rows \"| `path` | ...\"):\n%s", strings.Join(missing, "\n"))
	}
	if len(stale) > 0 {
		t.Errorf("README rows for values that values.yaml does not have:\n%s", strings.Join(stale, "\n"))
	}
}
