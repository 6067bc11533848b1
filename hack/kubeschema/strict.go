package main

// special returns the schema of a definition whose OpenAPI v2 form is
// narrower than what YAML manifests hold: a quantity may be written as a
// number (cpu: 1), an int-or-string as either.
func special(name string) (map[string]any, bool) {
	switch name {
	case "io.k8s.apimachinery.pkg.api.resource.Quantity":
		return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}, true
	case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
		return intOrString(), true
	}
	return nil, false
}

func intOrString() map[string]any {
	return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
}

// Strict copies an OpenAPI schema node as JSON schema: objects with
// declared properties refuse undeclared ones (unless the node preserves
// unknown fields), int-or-string becomes a oneOf, nullable (OpenAPI v3)
// admits null, and the vendor extensions and descriptions are dropped.
func Strict(node map[string]any, v3 bool) map[string]any {
	if f, _ := node["format"].(string); f == "int-or-string" {
		return intOrString()
	}
	if b, _ := node["x-kubernetes-int-or-string"].(bool); b {
		return intOrString()
	}
	if ref, ok := node["$ref"].(string); ok {
		if s, ok := special(trimRef(ref)); ok {
			return s
		}
		return map[string]any{"$ref": ref}
	}
	out := map[string]any{}
	for k, v := range node {
		switch k {
		case "description", "format", "x-kubernetes-group-version-kind", "x-kubernetes-list-map-keys",
			"x-kubernetes-list-type", "x-kubernetes-map-type", "x-kubernetes-patch-merge-key",
			"x-kubernetes-patch-strategy", "x-kubernetes-validations", "x-kubernetes-preserve-unknown-fields",
			"x-kubernetes-embedded-resource", "x-kubernetes-unions", "nullable", "default":
			continue
		case "properties":
			props := map[string]any{}
			for name, p := range v.(map[string]any) {
				props[name] = Strict(p.(map[string]any), v3)
			}
			out[k] = props
		case "items", "additionalProperties", "not":
			if m, ok := v.(map[string]any); ok {
				out[k] = Strict(m, v3)
			} else {
				out[k] = v
			}
		case "allOf", "anyOf", "oneOf":
			var list []any
			for _, c := range v.([]any) {
				list = append(list, Strict(c.(map[string]any), v3))
			}
			out[k] = list
		default:
			out[k] = v
		}
	}
	_, hasProps := node["properties"]
	_, hasAdditional := node["additionalProperties"]
	preserve, _ := node["x-kubernetes-preserve-unknown-fields"].(bool)
	if hasProps && !hasAdditional && !preserve {
		out["additionalProperties"] = false
	}
	if nullable, _ := node["nullable"].(bool); nullable && v3 {
		if t, ok := out["type"].(string); ok {
			out["type"] = []any{t, "null"}
		}
	}
	return out
}

func trimRef(ref string) string {
	const p = "#/definitions/"
	if len(ref) > len(p) && ref[:len(p)] == p {
		return ref[len(p):]
	}
	return ref
}
