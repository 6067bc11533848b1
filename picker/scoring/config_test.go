package scoring

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, name := range ScorerNames() {
		if _, ok := DefaultConfig().Scorers[name]; !ok {
			t.Errorf("scorer %q has no default weight", name)
		}
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		wantErr string // substring; empty: valid
		check   func(t *testing.T, c Config)
	}{
		{"empty is the default", ``, "", func(t *testing.T, c Config) {
			if c.Scorers[ScorerQueue] != 2 || len(c.Filters) != 1 || c.Health.XidHold.Duration != 5*time.Minute {
				t.Errorf("got %+v", c)
			}
		}},
		{"json", `{"scorers": {"queue": 1, "kv-cache": 3}, "saturation": {"queueDepth": 10}}`, "", func(t *testing.T, c Config) {
			if len(c.Scorers) != 2 || c.Scorers[ScorerKVCache] != 3 {
				t.Errorf("scorers %v: a listed map replaces the default", c.Scorers)
			}
			if c.Saturation.QueueDepth != 10 || c.Saturation.KVCache != 0.8 {
				t.Errorf("saturation %+v: unlisted fields keep defaults", c.Saturation)
			}
		}},
		{"yaml", "filters: []\nscorers:\n  in-flight: 1\nhealth:\n  xidHold: 30s\n  criticalXids: [79]\nprefix:\n  blockSize: 64\n", "", func(t *testing.T, c Config) {
			if len(c.Filters) != 0 || c.Health.XidHold.Duration != 30*time.Second || c.Prefix.BlockSize != 64 || c.Prefix.MaxBlocks != 32 {
				t.Errorf("got %+v", c)
			}
		}},
		{"unknown top-level field, json", `{"scorer": {"queue": 1}}`, `unknown field "scorer"`, nil},
		{"unknown nested field, json", `{"saturation": {"queue": 1}}`, `unknown field "saturation.queue"`, nil},
		{"unknown field, yaml", "prefix:\n  blockBytes: 3\n", `unknown field "prefix.blockBytes"`, nil},
		{"wrong case, yaml", "prefix:\n  blocksize: 3\n", `unknown field "prefix.blocksize"`, nil},
		{"wrong case, json", `{"SpeedAlpha": 0.3}`, `unknown field "SpeedAlpha"`, nil},
		{"duplicate field, json", `{"saturation": {"kvCache": 0.5, "kvCache": 0.6}}`, `duplicate field "saturation.kvCache"`, nil},
		{"duplicate field, yaml", "speedAlpha: 0.1\nspeedAlpha: 0.2\n", `"speedAlpha"`, nil},
		{"trailing json", `{} {}`, "after top-level value", nil},
		{"unknown scorer", `{"scorers": {"gpu-magic": 1}}`, `unknown scorer "gpu-magic"`, nil},
		{"unknown filter", `{"filters": ["health", "model"]}`, `unknown filter "model"`, nil},
		{"filter twice", `{"filters": ["health", "health"]}`, "listed twice", nil},
		{"negative weight", `{"scorers": {"queue": -1}}`, "weight -1", nil},
		{"no positive weight", `{"scorers": {"queue": 0}}`, "no scorer has a positive weight", nil},
		{"kv threshold", `{"saturation": {"kvCache": 1.5}}`, "saturation.kvCache", nil},
		{"bad duration", `{"health": {"xidHold": "soon"}}`, "soon", nil},
		{"numeric duration", `{"health": {"xidHold": 5}}`, "duration must be a string", nil},
		{"negative hold", `{"health": {"xidHold": "-1s"}}`, "health.xidHold", nil},
		{"too many blocks", `{"prefix": {"maxBlocks": 1000}}`, "prefix.maxBlocks", nil},
		{"alpha", `{"speedAlpha": 0}`, "speedAlpha", nil},
		{"mask", `{"throttleMask": 0}`, "throttleMask", nil},
		{"wrong type", `{"scorers": ["queue"]}`, "scorers", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := ParseConfig([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
			if _, err := New(c, seeded(1), nil); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "scoring.yaml")
	if err := os.WriteFile(path, []byte("scorers: {queue: 1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadConfig(path); err != nil || c.Scorers[ScorerQueue] != 1 {
		t.Fatalf("LoadConfig: %+v, %v", c, err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("missing file: no error")
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"nope": 1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err %v, want the path and the field", err)
	}
}

// FuzzParseConfig: the decoder never panics, and whatever it accepts is
// valid and builds a picker.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"scorers": {"queue": 1}}`, "filters: [health]\nscorers: {speed: 2}\n",
		`{"health": {"xidHold": "1m", "criticalXids": [79, 48]}}`, `{"prefix": {"blockSize": 1, "maxBlocks": 128, "capacity": 1}}`,
		"saturation: {queueDepth: 1e308, kvCache: 0}", `{"scorers": {"queue": 1e400}}`, "- a\n- b", `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		if _, err := New(c, seeded(1), nil); err != nil {
			t.Fatalf("accepted config does not build: %v", err)
		}
	})
}
