package pool

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
)

// serviceAccountNamespace is where a pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Options chooses the endpoint source: an InferencePool (Pool, Namespace)
// or a static list (Endpoints), exactly one.
type Options struct {
	// Pool is the InferencePool's name.
	Pool string
	// Namespace is the InferencePool's namespace (default: the picker's
	// own namespace in a cluster, else "default").
	Namespace string
	// Endpoints is a comma-separated ip:port[@node] list.
	Endpoints string
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	ns := "default"
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil && strings.TrimSpace(string(b)) != "" {
		ns = strings.TrimSpace(string(b))
	}
	return Options{Namespace: ns}
}

// AddFlags registers --pool.name, --pool.namespace and --endpoints.
func (o *Options) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Pool, "pool.name", o.Pool, "InferencePool (inference.networking.k8s.io/v1) whose pods to route to")
	fs.StringVar(&o.Namespace, "pool.namespace", o.Namespace, "namespace of the InferencePool")
	fs.StringVar(&o.Endpoints, "endpoints", o.Endpoints, "comma-separated ip:port[@node] list to route to instead of an InferencePool (no Kubernetes); @node: only that node's agent may report for the endpoint")
}

// Validate checks that exactly one of --pool.name and --endpoints is set
// and that it is well formed; the error lists every problem. It changes
// nothing: defaults come from DefaultOptions.
func (o *Options) Validate() error {
	var errs []error
	switch {
	case o.Pool == "" && o.Endpoints == "":
		errs = append(errs, errors.New("need --pool.name (an InferencePool) or --endpoints (a static list)"))
	case o.Pool != "" && o.Endpoints != "":
		errs = append(errs, errors.New("--pool.name and --endpoints exclude each other: give one"))
	}
	if o.Pool != "" {
		for _, msg := range validation.IsDNS1123Subdomain(o.Pool) {
			errs = append(errs, fmt.Errorf("--pool.name %q: %s", o.Pool, msg))
		}
		for _, msg := range validation.IsDNS1123Label(o.Namespace) {
			errs = append(errs, fmt.Errorf("--pool.namespace %q: %s", o.Namespace, msg))
		}
	}
	if o.Endpoints != "" {
		if _, err := ParseEndpoints(o.Endpoints); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// New returns the source the options name: Static for --endpoints, else
// Kubernetes through cfg (which may be nil only for --endpoints). Run it
// until the picker stops.
func New(o Options, cfg *rest.Config, logger *slog.Logger) (Runnable, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Endpoints != "" {
		return NewStatic(o.Endpoints)
	}
	if cfg == nil {
		return nil, errors.New("pool: --pool.name needs a kubernetes client configuration")
	}
	return NewKubernetes(cfg, o.Namespace, o.Pool, logger)
}
