package modelserver

import (
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/headroom-dev/headroom/snapshot"
)

// podTargets turns snapshot pods into scrape targets.
type podTargets struct {
	defaultPort int
	logger      *slog.Logger
	unknown     *onceLog // engine-type values already reported
}

func newPodTargets(defaultPort int, logger *slog.Logger) *podTargets {
	return &podTargets{defaultPort: defaultPort, logger: logger, unknown: newOnceLog()}
}

// specs lists the targets: every Kubernetes pod with an IP (host-network
// pods have none and are skipped), then the standalone endpoints. Port:
// the pod's metrics-port annotation or the default; path: its
// prometheus.io/path annotation or the engine's default; engine: its
// engine-type label, vLLM when unset or unknown.
func (pt *podTargets) specs(pods []snapshot.Pod, standalone []Endpoint) []targetSpec {
	out := make([]targetSpec, 0, len(pods)+len(standalone))
	for i := range pods {
		p := &pods[i]
		if p.UID == "" || p.IP == "" {
			continue // standalone (added below) or host network
		}
		e := pt.engine(p)
		port := p.MetricsPort
		if port <= 0 || port > 65535 {
			port = pt.defaultPort
		}
		path := p.MetricsPath
		if path == "" {
			path = e.DefaultPath()
		} else if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		url := "http://" + net.JoinHostPort(p.IP, strconv.Itoa(port)) + path
		out = append(out, targetSpec{key: p.UID, url: url, engine: e})
	}
	for _, ep := range standalone {
		out = append(out, targetSpec{key: standaloneKey(ep.Name), url: ep.MetricsURL, engine: ep.Engine})
	}
	return out
}

func (pt *podTargets) engine(p *snapshot.Pod) Engine {
	if p.Engine == "" {
		return VLLM
	}
	e, ok := ParseEngine(p.Engine)
	if !ok {
		if pt.unknown.first(p.UID + "\x00" + p.Engine) {
			pt.logger.Warn("unknown engine-type label; reading the pod as vLLM",
				"pod", p.Namespace+"/"+p.Name, "engine_type", p.Engine, "known", Engines())
		}
		return VLLM
	}
	return e
}

// onceLog remembers which messages were logged, so each is logged once.
type onceLog struct {
	mu   sync.Mutex
	seen map[string]bool
}

func newOnceLog() *onceLog { return &onceLog{seen: map[string]bool{}} }

// first reports whether key is new, and remembers it.
func (o *onceLog) first(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[key] {
		return false
	}
	o.seen[key] = true
	return true
}
