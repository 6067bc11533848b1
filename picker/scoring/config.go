package scoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	kjson "sigs.k8s.io/json"

	"sigs.k8s.io/yaml"
)

// Names of the built-in filter and scorers, as a Config names them and as
// Decision.Contributions keys them.
const (
	FilterHealth        = "health"
	ScorerQueue         = "queue"
	ScorerKVCache       = "kv-cache"
	ScorerInFlight      = "in-flight"
	ScorerPrefixCache   = "prefix-cache"
	ScorerLoRA          = "lora-affinity"
	ScorerSpeed         = "speed"
	ScorerVRAM          = "vram"
	ScorerSMActivity    = "sm-activity"
	ScorerThrottle      = "throttle"
	ScorerWait          = "expected-wait"
	maxConfigBlockBytes = 1 << 20
	maxConfigCapacity   = 1 << 24
)

// ScorerNames returns the built-in scorers in the order they run.
func ScorerNames() []string {
	return []string{
		ScorerWait, ScorerQueue, ScorerKVCache, ScorerInFlight, ScorerPrefixCache, ScorerLoRA,
		ScorerSpeed, ScorerVRAM, ScorerSMActivity, ScorerThrottle,
	}
}

// Config chooses the filters, the scorers' weights and the thresholds. It
// decodes from JSON or YAML with [ParseConfig]; fields left out keep
// their DefaultConfig values, and a listed "filters" or "scorers" replaces
// the default list whole.
type Config struct {
	// Filters are applied in order; the only built-in is "health".
	Filters []string `json:"filters"`
	// Scorers maps a scorer name to its weight; a missing name or weight 0
	// turns the scorer off.
	Scorers map[string]float64 `json:"scorers"`
	// Saturation decides when sheddable requests are refused.
	Saturation Saturation   `json:"saturation"`
	Health     HealthConfig `json:"health"`
	Prefix     PrefixConfig `json:"prefix"`
	// SpeedAlpha weighs each new observation in the speed averages and
	// the learnt rates.
	SpeedAlpha float64 `json:"speedAlpha"`
	// Wait tunes the expected-wait scorer.
	Wait WaitConfig `json:"wait"`
	// ThrottleMask is the NVML clocks-event bits that count as throttling.
	ThrottleMask uint64 `json:"throttleMask"`
}

// HealthConfig tunes the health filter.
type HealthConfig struct {
	// CriticalXids are the Xid codes that take a GPU out.
	CriticalXids []uint64 `json:"criticalXids"`
	// XidHold is how long after the report showing a new critical Xid the
	// GPU stays out ("0s": only while that report is the newest).
	XidHold Duration `json:"xidHold"`
}

// Duration is a time.Duration written as a Go duration string ("5m").
type Duration struct{ time.Duration }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"5m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// DefaultConfig is the mix the picker runs without a config file.
//
// Weights: queue 2 and kv-cache 2 as in the reference endpoint picker,
// the two load signals of a server that preallocates its VRAM. in-flight
// 2, equal to queue, so the requests this replica sent since the last
// report can outweigh a queue reading that is up to a report interval
// old; the queue scorer adds the same picks to the reported queue, and
// together they stop a burst from herding. prefix-cache 1, not the
// reference's 3: ours is an approximation from what this replica sent, and
// at 3 against 2+2 identical prompts pile onto one pod by design.
// lora-affinity 1 (neutral for requests without an adapter), speed 1
// (learned from outcomes, noisy), throttle 1 (a throttled GPU is slower
// for every request), vram 0.5 and sm-activity 0.5 (weak signals under
// vLLM, whose VRAM use does not move with load; they break near-ties
// and help servers that allocate on demand).
//
// These are first guesses, to be re-tuned by the routing benchmark in a
// later issue.
//
// Saturation (for shedding) follows the reference picker's defaults: a
// queue over 5 or KV-cache use over 0.8. A GPU with a new critical Xid
// stays out for 5 minutes; Xids that need a GPU reset do not clear
// sooner.
func DefaultConfig() Config {
	return Config{
		Filters: []string{FilterHealth},
		Scorers: map[string]float64{
			ScorerWait: 2, ScorerQueue: 2, ScorerKVCache: 2, ScorerInFlight: 2,
			ScorerPrefixCache: 1, ScorerLoRA: 1, ScorerSpeed: 1, ScorerThrottle: 1,
			ScorerVRAM: 0.5, ScorerSMActivity: 0.5,
		},
		Saturation: Saturation{QueueDepth: 5, KVCache: 0.8},
		Health: HealthConfig{
			CriticalXids: DefaultCriticalXids(),
			XidHold:      Duration{5 * time.Minute},
		},
		Prefix:       PrefixConfig{BlockSize: 256, MaxBlocks: 32, Capacity: 1 << 16},
		SpeedAlpha:   0.2,
		ThrottleMask: DefaultThrottleMask,
		Wait:         WaitConfig{Scale: Duration{100 * time.Millisecond}, DefaultService: Duration{time.Second}},
	}
}

// LoadConfig reads and parses a config file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("scoring config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig decodes a JSON (a document starting with '{') or YAML
// config over DefaultConfig, strictly: an unknown, wrongly cased or
// repeated field is an error that names it. The result is validated.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	cfg.Filters, cfg.Scorers, cfg.Health.CriticalXids = nil, nil, nil
	doc := bytes.TrimSpace(data)
	if len(doc) == 0 || doc[0] != '{' {
		var err error
		if doc, err = yaml.YAMLToJSONStrict(data); err != nil {
			return Config{}, fmt.Errorf("scoring config: %w", err)
		}
	}
	if err := decodeStrict(doc, &cfg); err != nil {
		return Config{}, fmt.Errorf("scoring config: %w", err)
	}
	def := DefaultConfig()
	if cfg.Filters == nil {
		cfg.Filters = def.Filters
	}
	if cfg.Scorers == nil {
		cfg.Scorers = def.Scorers
	}
	if cfg.Health.CriticalXids == nil {
		cfg.Health.CriticalXids = def.Health.CriticalXids
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// decodeStrict decodes one JSON value into cfg with sigs.k8s.io/json's
// strict mode, as Kubernetes decodes its objects: field names match case
// sensitively, and an unknown or repeated field is an error naming its
// path, as is trailing data.
func decodeStrict(doc []byte, cfg *Config) error {
	strict, err := kjson.UnmarshalStrict(doc, cfg, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	for i, f := range c.Filters {
		if f != FilterHealth {
			return fmt.Errorf("scoring config: filters: unknown filter %q (known: %s)", f, FilterHealth)
		}
		if slices.Contains(c.Filters[:i], f) {
			return fmt.Errorf("scoring config: filters: %q listed twice", f)
		}
	}
	positive := false
	for name, w := range c.Scorers {
		if known := ScorerNames(); !slices.Contains(known, name) {
			return fmt.Errorf("scoring config: scorers: unknown scorer %q (known: %s)", name, strings.Join(known, ", "))
		}
		if !(w >= 0) || math.IsInf(w, 0) {
			return fmt.Errorf("scoring config: scorers: %s: weight %v must be a finite number ≥ 0", name, w)
		}
		positive = positive || w > 0
	}
	if !positive {
		return errors.New("scoring config: scorers: no scorer has a positive weight")
	}
	return c.validateTunables()
}

func (c Config) validateTunables() error {
	s, p := c.Saturation, c.Prefix
	switch {
	case !(s.QueueDepth >= 0) || math.IsInf(s.QueueDepth, 0):
		return fmt.Errorf("scoring config: saturation.queueDepth %v must be a finite number ≥ 0", s.QueueDepth)
	case !(s.KVCache >= 0 && s.KVCache <= 1):
		return fmt.Errorf("scoring config: saturation.kvCache %v must be within 0..1", s.KVCache)
	case c.Health.XidHold.Duration < 0:
		return fmt.Errorf("scoring config: health.xidHold %v must not be negative", c.Health.XidHold)
	case p.BlockSize < 1 || p.BlockSize > maxConfigBlockBytes:
		return fmt.Errorf("scoring config: prefix.blockSize %d must be within 1..%d", p.BlockSize, maxConfigBlockBytes)
	case p.MaxBlocks < 1 || p.MaxBlocks > MaxPrefixBlocks:
		return fmt.Errorf("scoring config: prefix.maxBlocks %d must be within 1..%d", p.MaxBlocks, MaxPrefixBlocks)
	case p.Capacity < 1 || p.Capacity > maxConfigCapacity:
		return fmt.Errorf("scoring config: prefix.capacity %d must be within 1..%d", p.Capacity, maxConfigCapacity)
	case !(c.SpeedAlpha > 0 && c.SpeedAlpha <= 1):
		return fmt.Errorf("scoring config: speedAlpha %v must be within (0, 1]", c.SpeedAlpha)
	case c.Wait.Scale.Duration <= 0 || c.Wait.Scale.Duration > time.Hour:
		return fmt.Errorf("scoring config: wait.scale %v must be within (0, 1h]", c.Wait.Scale)
	case c.Wait.DefaultService.Duration <= 0 || c.Wait.DefaultService.Duration > time.Hour:
		return fmt.Errorf("scoring config: wait.defaultService %v must be within (0, 1h]", c.Wait.DefaultService)
	case c.ThrottleMask == 0:
		return errors.New("scoring config: throttleMask must not be 0 (turn the throttle scorer off instead)")
	}
	return nil
}
