package pool

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		wantErr []string
	}{
		{name: "pool", args: []string{"--pool.name=llama", "--pool.namespace=serving"}},
		{name: "endpoints", args: []string{"--endpoints=10.0.0.1:8000"}},
		{name: "neither", wantErr: []string{"need --pool.name"}},
		{name: "both", args: []string{"--pool.name=llama", "--endpoints=10.0.0.1:8000"}, wantErr: []string{"exclude each other"}},
		{name: "bad names", args: []string{"--pool.name=Llama_3", "--pool.namespace=a.b"}, wantErr: []string{"--pool.name \"Llama_3\"", "--pool.namespace \"a.b\""}},
		{name: "bad endpoints", args: []string{"--endpoints=10.0.0.1,10.0.0.2:0"}, wantErr: []string{"entry 1", "entry 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := DefaultOptions()
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			o.AddFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	src, err := New(Options{Endpoints: "10.0.0.1:8000"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.(*Static); !ok {
		t.Errorf("New with --endpoints = %T, want *Static", src)
	}
	if _, err := New(Options{Pool: "llama", Namespace: "serving"}, nil, nil); err == nil {
		t.Error("New with a pool and no rest.Config: nil error")
	}
	if _, err := New(Options{}, nil, nil); err == nil {
		t.Error("New with no options: nil error")
	}
}
