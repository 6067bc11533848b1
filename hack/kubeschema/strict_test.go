package main

import (
	"encoding/json"
	"os"
	"path/filepath"
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

// TestCRDRootTakesObjectMeta: a CRD whose root schema declares only spec
// and status (Istio's) still admits apiVersion, kind and metadata, as the
// API server does, and nothing else.
func TestCRDRootTakesObjectMeta(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  group: networking.istio.io
  names: {kind: DestinationRule}
  versions:
    - name: v1
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {host: {type: string}}}
`
	path := filepath.Join(dir, "crd.yaml")
	if err := os.WriteFile(path, []byte(crd), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := fromCRD(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(files["destinationrule-networking-v1.json"])
	want := `{"additionalProperties":false,"properties":{"apiVersion":{"type":"string"},"kind":{"type":"string"},"metadata":{"type":"object"},"spec":{"additionalProperties":false,"properties":{"host":{"type":"string"}},"type":"object"}},"type":"object"}`
	if string(got) != want {
		t.Errorf("schema\n%s\nwant\n%s", got, want)
	}
}
