package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		v3             bool
	}{
		{"closes objects", `{"type":"object","description":"x","properties":{"a":{"type":"string"}}}`,
			`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false}`, false},
		{"keeps maps open", `{"type":"object","additionalProperties":{"type":"string"}}`,
			`{"type":"object","additionalProperties":{"type":"string"}}`, false},
		{"preserves unknown fields", `{"type":"object","x-kubernetes-preserve-unknown-fields":true,"properties":{"a":{"type":"string"}}}`,
			`{"type":"object","properties":{"a":{"type":"string"}}}`, true},
		{"int or string", `{"type":"string","format":"int-or-string"}`,
			`{"oneOf":[{"type":"string"},{"type":"integer"}]}`, false},
		{"crd int or string", `{"x-kubernetes-int-or-string":true,"anyOf":[{"type":"integer"},{"type":"string"}]}`,
			`{"oneOf":[{"type":"string"},{"type":"integer"}]}`, true},
		{"quantity by ref", `{"$ref":"#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity","description":"d"}`,
			`{"oneOf":[{"type":"string"},{"type":"number"}]}`, false},
		{"ref alone", `{"$ref":"#/definitions/a.B","description":"d"}`, `{"$ref":"#/definitions/a.B"}`, false},
		{"nullable", `{"type":"string","nullable":true}`, `{"type":["string","null"]}`, true},
		{"nested items", `{"type":"array","items":{"type":"object","properties":{"a":{"type":"integer"}}}}`,
			`{"type":"array","items":{"type":"object","properties":{"a":{"type":"integer"}},"additionalProperties":false}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in, want map[string]any
			if err := json.Unmarshal([]byte(tt.in), &in); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			got := Strict(in, tt.v3)
			// Round-trip so []any and map types compare alike.
			b, _ := json.Marshal(got)
			var gotJSON map[string]any
			_ = json.Unmarshal(b, &gotJSON)
			if !reflect.DeepEqual(gotJSON, want) {
				t.Errorf("Strict(%s)\n got %s\nwant %s", tt.in, b, tt.want)
			}
		})
	}
}

func TestFileName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ group, version, kind, want string }{
		{"", "v1", "Service", "service-v1.json"},
		{"apps", "v1", "DaemonSet", "daemonset-apps-v1.json"},
		{"monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitor-monitoring-v1.json"},
		{"inference.networking.k8s.io", "v1", "InferencePool", "inferencepool-inference-v1.json"},
	} {
		if got := FileName(tt.group, tt.version, tt.kind); got != tt.want {
			t.Errorf("FileName(%q, %q, %q) = %q, want %q", tt.group, tt.version, tt.kind, got, tt.want)
		}
	}
}
