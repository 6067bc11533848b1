package app

import (
	"reflect"
	"testing"
)

// TestValidateChangesNothing: Validate only checks; what it checks is what
// New uses. (It once copied --kubeconfig into the pool's options.)
func TestValidateChangesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Options)
		valid bool
	}{
		{name: "InferencePool with a kubeconfig", valid: true, edit: func(o *Options) {
			o.Auth, o.CertFile, o.KeyFile = AuthMTLS, "tls.crt", "tls.key"
			o.ClientCAFile, o.Kubeconfig = "ca.crt", "/etc/kubeconfig"
			o.Pool.Pool, o.Pool.Namespace = "llama", "serving"
		}},
		{name: "static endpoints, insecure", valid: true, edit: func(o *Options) {
			o.Auth, o.IngestAddress, o.Pool.Endpoints = AuthInsecure, "127.0.0.1:9004", "10.0.0.1:8000"
		}},
		{name: "invalid everything", edit: func(o *Options) {
			o.Auth, o.Kubeconfig, o.IngestAddress = "nope", "/etc/kubeconfig", "no-port"
			o.Pool.Pool, o.Pool.Endpoints, o.ViewRefresh = "Bad_Name", "x", 0
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			tt.edit(&o)
			before := o
			before.Token.ServiceAccounts = append([]string(nil), o.Token.ServiceAccounts...)
			err := o.Validate()
			if (err == nil) != tt.valid {
				t.Fatalf("Validate = %v, want valid=%v", err, tt.valid)
			}
			if !reflect.DeepEqual(o, before) {
				t.Errorf("Validate changed the options:\nbefore %+v\nafter  %+v", before, o)
			}
		})
	}
}
