// Command kubeschema writes strict JSON schemas for kubeconform, offline:
// one file per kind from a Kubernetes OpenAPI v2 document
// (api/openapi-spec/swagger.json of the k8s.io/kubernetes module) and from
// CustomResourceDefinition YAML files. Strict means an object with declared
// properties admits no others, so a misspelt field fails validation.
//
// Files are named as kubeconform's schema-location template
// `{{ .ResourceKind }}{{ .KindSuffix }}.json` expects: deployment-apps-v1.json,
// service-v1.json, servicemonitor-monitoring-v1.json.
//
//	go run ./hack/kubeschema -swagger swagger.json -out dir crd.yaml…
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	swagger := flag.String("swagger", "", "Kubernetes OpenAPI v2 document (swagger.json)")
	out := flag.String("out", "", "directory to write the schemas to")
	flag.Parse()
	if err := run(*swagger, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
}

func run(swagger, out string, crds []string) error {
	if out == "" {
		return errors.New("-out is required")
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	n := 0
	if swagger != "" {
		files, err := fromSwagger(swagger)
		if err != nil {
			return err
		}
		for name, s := range files {
			if err := write(out, name, s); err != nil {
				return err
			}
		}
		n += len(files)
	}
	for _, path := range crds {
		files, err := fromCRD(path)
		if err != nil {
			return err
		}
		for name, s := range files {
			if err := write(out, name, s); err != nil {
				return err
			}
		}
		n += len(files)
	}
	fmt.Fprintf(os.Stderr, "kubeschema: %d schemas in %s\n", n, out)
	return nil
}

func write(dir, name string, schema map[string]any) error {
	b, err := json.Marshal(schema)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return os.WriteFile(filepath.Join(dir, name), b, 0o644)
}

// FileName is kubeconform's name for a kind's schema: the kind in lower
// case, the group's first label and the version (core kinds: the version).
func FileName(group, version, kind string) string {
	suffix := "-" + strings.ToLower(version)
	if group != "" {
		suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + suffix
	}
	return strings.ToLower(kind) + suffix + ".json"
}

// fromSwagger makes one self-contained schema per group-version-kind: the
// kind's definition with the definitions it reaches.
func fromSwagger(path string) (map[string]map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Definitions) == 0 {
		return nil, fmt.Errorf("%s: no definitions", path)
	}
	files := map[string]map[string]any{}
	for name, def := range doc.Definitions {
		gvks, _ := def["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			gvk, _ := g.(map[string]any)
			group, _ := gvk["group"].(string)
			version, _ := gvk["version"].(string)
			kind, _ := gvk["kind"].(string)
			if kind == "" || version == "" {
				continue
			}
			root := Strict(def, false)
			defs := map[string]any{}
			reach(def, doc.Definitions, defs)
			delete(defs, name)
			root["definitions"] = defs
			files[FileName(group, version, kind)] = root
		}
	}
	return files, nil
}

// reach adds every definition n refers to, transitively, made strict.
func reach(n any, all map[string]map[string]any, into map[string]any) {
	switch v := n.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			if _, done := into[name]; !done {
				if def, ok := all[name]; ok {
					into[name] = Strict(def, false)
					reach(def, all, into)
				}
			}
		}
		for _, c := range v {
			reach(c, all, into)
		}
	case []any:
		for _, c := range v {
			reach(c, all, into)
		}
	}
}

// withObjectMeta declares apiVersion, kind and metadata at a custom
// resource's root when its CRD leaves them out (Istio's do): the API
// server takes them on every object whatever the schema says.
func withObjectMeta(root map[string]any) map[string]any {
	props, ok := root["properties"].(map[string]any)
	if !ok {
		return root
	}
	for name, typ := range map[string]string{"apiVersion": "string", "kind": "string", "metadata": "object"} {
		if _, ok := props[name]; !ok {
			props[name] = map[string]any{"type": typ}
		}
	}
	return root
}

// fromCRD makes one schema per served version of each CRD in a YAML file.
func fromCRD(path string) (map[string]map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	files := map[string]map[string]any{}
	for _, doc := range strings.Split(string(b), "\n---") {
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, v := range crd.Spec.Versions {
			if crd.Spec.Names.Kind == "" || v.Schema.OpenAPIV3Schema == nil {
				continue
			}
			files[FileName(crd.Spec.Group, v.Name, crd.Spec.Names.Kind)] = withObjectMeta(Strict(v.Schema.OpenAPIV3Schema, true))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no CustomResourceDefinition with a schema", path)
	}
	return files, nil
}
