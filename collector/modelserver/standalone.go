package modelserver

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/headroom-dev/headroom/snapshot"
)

// Endpoint is one standalone model server (a host with no kubelet).
type Endpoint struct {
	// Name identifies it; it is reported as a pod of that name with an
	// empty namespace.
	Name string
	// IP and Port are where it serves inference.
	IP   string
	Port int
	// Engine is its metric dialect.
	Engine Engine
	// GPUs are the GPUs it runs on, as given: NVML indices or UUIDs.
	GPUs []string
	// MetricsURL is where it serves Prometheus metrics.
	MetricsURL string
}

// rawEndpoint is an entry as written, before validation.
type rawEndpoint struct {
	Name     string    `json:"name"`
	Endpoint string    `json:"endpoint"`
	Engine   string    `json:"engine"`
	GPUs     []gpuText `json:"gpus"`
	Metrics  string    `json:"metrics"`
}

// gpuText is a GPU index or UUID; JSON may give an index as a number.
type gpuText string

func (g *gpuText) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*g = gpuText(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("gpu %s: want an index or a UUID", b)
	}
	*g = gpuText(n.String())
	return nil
}

// ParseEndpoints parses the inline list of --modelserver.endpoints:
// entries separated by spaces, each a comma-separated list of key=value
// fields:
//
//	name=vllm-0,endpoint=10.0.0.5:8000,engine=vllm,gpus=0;1,metrics=http://10.0.0.5:8000/metrics
//
// name and endpoint (IP:port) are required; engine defaults to vllm; gpus
// are NVML indices or GPU/MIG UUIDs separated by semicolons; metrics
// defaults to http://<endpoint> plus the engine's metrics path. Every
// problem of every entry is reported.
func ParseEndpoints(s string) ([]Endpoint, error) {
	var out []Endpoint
	var errs []error
	for i, entry := range strings.Fields(s) {
		raw, err := splitEntry(entry)
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d (%q): %w", i+1, entry, err))
			continue
		}
		ep, err := raw.validate()
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d (%q): %w", i+1, entry, err))
			continue
		}
		out = append(out, ep)
	}
	return out, errors.Join(errs...)
}

func splitEntry(entry string) (rawEndpoint, error) {
	var raw rawEndpoint
	var errs []error
	seen := map[string]bool{}
	for field := range strings.SplitSeq(entry, ",") {
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("field %q is not key=value", field))
			continue
		}
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s given twice", key))
			continue
		}
		seen[key] = true
		switch key {
		case "name":
			raw.Name = val
		case "endpoint":
			raw.Endpoint = val
		case "engine":
			raw.Engine = val
		case "metrics":
			raw.Metrics = val
		case "gpus":
			for g := range strings.SplitSeq(val, ";") {
				raw.GPUs = append(raw.GPUs, gpuText(g))
			}
		default:
			errs = append(errs, fmt.Errorf("unknown key %q (want name, endpoint, engine, gpus, metrics)", key))
		}
	}
	return raw, errors.Join(errs...)
}

// endpointsFile is the JSON form of --modelserver.endpoints-file.
type endpointsFile struct {
	Endpoints []rawEndpoint `json:"endpoints"`
}

// ParseEndpointsFile reads a JSON list of standalone endpoints:
//
//	{"endpoints": [{"name": "vllm-0", "endpoint": "10.0.0.5:8000",
//	  "engine": "vllm", "gpus": [0, "GPU-…"], "metrics": "http://…"}]}
//
// Unknown fields are errors; the fields mean what they mean inline.
func ParseEndpointsFile(path string) ([]Endpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f endpointsFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: data after the JSON object", path)
	}
	var out []Endpoint
	var errs []error
	for i, raw := range f.Endpoints {
		ep, err := raw.validate()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: endpoint %d (%q): %w", path, i+1, raw.Name, err))
			continue
		}
		out = append(out, ep)
	}
	return out, errors.Join(errs...)
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// validate checks every field of an entry and reports all problems.
func (r rawEndpoint) validate() (Endpoint, error) {
	ep := Endpoint{Name: r.Name, Engine: VLLM}
	var errs []error
	if !validName.MatchString(r.Name) {
		errs = append(errs, fmt.Errorf("name %q: want letters, digits, '.', '_' or '-'", r.Name))
	}
	if r.Endpoint == "" {
		errs = append(errs, errors.New("endpoint (IP:port) is missing"))
	} else if ip, port, err := splitIPPort(r.Endpoint); err != nil {
		errs = append(errs, fmt.Errorf("endpoint %q: %w", r.Endpoint, err))
	} else {
		ep.IP, ep.Port = ip, port
	}
	if r.Engine != "" {
		e, ok := ParseEngine(r.Engine)
		if !ok {
			errs = append(errs, fmt.Errorf("engine %q: want one of %v", r.Engine, Engines()))
		}
		ep.Engine = e
	}
	for _, g := range r.GPUs {
		if !validGPURef(string(g)) {
			errs = append(errs, fmt.Errorf("gpu %q: want an NVML index or a GPU-/MIG- UUID", g))
			continue
		}
		ep.GPUs = append(ep.GPUs, string(g))
	}
	switch {
	case r.Metrics != "":
		if err := checkURL(r.Metrics); err != nil {
			errs = append(errs, fmt.Errorf("metrics %q: %w", r.Metrics, err))
		}
		ep.MetricsURL = r.Metrics
	case ep.IP != "":
		ep.MetricsURL = "http://" + net.JoinHostPort(ep.IP, strconv.Itoa(ep.Port)) + ep.Engine.DefaultPath()
	}
	return ep, errors.Join(errs...)
}

func splitIPPort(s string) (string, int, error) {
	host, portText, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("host %q is not an IP address", host)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not in 1-65535", portText)
	}
	return host, port, nil
}

func validGPURef(g string) bool {
	if n, err := strconv.Atoi(g); err == nil {
		return n >= 0
	}
	return (strings.HasPrefix(g, "GPU-") || strings.HasPrefix(g, "MIG-")) && len(g) > 4
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q: want http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// addStandalone returns pods with the endpoints added as pods, their GPUs
// resolved against gpus, sorted by namespace and name; pods itself is not
// changed. A GPU reference not on the node is logged once and left out.
func addStandalone(pods []snapshot.Pod, gpus []snapshot.GPU, eps []Endpoint, once *onceLog, logger *slog.Logger) []snapshot.Pod {
	out := make([]snapshot.Pod, 0, len(pods)+len(eps))
	out = append(out, pods...)
	for _, ep := range eps {
		p := snapshot.Pod{Name: ep.Name, IP: ep.IP, Port: ep.Port, Engine: string(ep.Engine)}
		for _, ref := range ep.GPUs {
			uuid, ok := resolveGPU(gpus, ref)
			if !ok {
				if once.first(ep.Name + "\x00" + ref) {
					logger.Warn("standalone endpoint names a GPU not on this node; leaving it out",
						"endpoint", ep.Name, "gpu", ref, "gpus_on_node", len(gpus))
				}
				continue
			}
			if !slices.Contains(p.GPUs, uuid) {
				p.GPUs = append(p.GPUs, uuid)
			}
		}
		slices.Sort(p.GPUs)
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(x, y snapshot.Pod) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	return out
}

// resolveGPU finds the physical GPU an index, GPU UUID or MIG UUID names.
func resolveGPU(gpus []snapshot.GPU, ref string) (string, bool) {
	idx, err := strconv.Atoi(ref)
	for _, g := range gpus {
		if err == nil && g.Index == idx || g.UUID == ref {
			return g.UUID, true
		}
		for _, m := range g.MIG {
			if m.UUID == ref {
				return g.UUID, true
			}
		}
	}
	return "", false
}
