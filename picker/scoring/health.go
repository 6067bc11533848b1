package scoring

import (
	"slices"
	"sync"
	"time"

	"github.com/headroom-dev/headroom/picker/store"
	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// DefaultCriticalXids returns the Xid codes after which a GPU takes no new
// work: double-bit ECC (48), GSP and internal micro-controller faults (62,
// 119, 120), ECC page retirement and row-remap failures (63, 64), NVLink
// errors (74), fallen off the bus (79), and uncorrectable or contained
// ECC errors (92, 94, 95).
func DefaultCriticalXids() []uint64 {
	return []uint64{48, 62, 63, 64, 74, 79, 92, 94, 95, 119, 120}
}

// maxXidGPUs bounds the GPUs whose Xid counts the filter remembers (every
// GPU of the pool's endpoints); past it, the entries not seen for longest
// are dropped.
const maxXidGPUs = 1 << 16

// gpuKey names one GPU of one node: a UUID alone is only what a report
// says, and another node's report of the same UUID must not touch this
// node's history.
type gpuKey struct{ node, uuid string }

// HealthFilter drops endpoints that must not take work: a model server
// whose metrics scrape failed while its node's agent kept reporting (a
// hung or failing server), a GPU lost, a GPU whose memory is unsafe until
// it is reset (an uncorrectable volatile ECC error, a row remap pending or
// failed: see MemoryHold), or a GPU with a new critical Xid
// (its count for one of the codes grew since the previous report of that
// GPU on the same node; the GPU stays out for Hold after the report that
// showed it). When that would leave nothing, it keeps every endpoint and
// marks the pick degraded: the picker then ranks by in-flight requests
// alone.
//
// An endpoint whose node has no fresh report (no report, or one past its
// TTL) is not unhealthy but unknown: the agent, not the server, may be
// what stopped. It stays eligible, and the scorers that read telemetry
// score it as the mean of the endpoints they know (see Picker).
//
// The first report of a GPU sets its baseline: counts the agent had
// before the picker saw it are not new. Every GPU is remembered from its
// first report on, clean ones too, so the first critical Xid of a GPU that
// had none is new.
type HealthFilter struct {
	critical []uint64
	hold     time.Duration

	mu   sync.Mutex
	gpus map[gpuKey]*xidHistory
}

type xidCount struct{ code, count uint64 }

type xidHistory struct {
	sample int64 // unix nanos of the report the counts come from
	// counts holds one entry per critical code seen, so at most as many
	// as there are critical codes.
	counts []xidCount
	// newAt is the sample time of the report that showed an increase.
	newAt int64
	// lost is what the newest reading of the GPU said of it.
	lost bool
}

// NewHealthFilter returns a filter treating the given Xid codes as
// critical (nil: DefaultCriticalXids) and keeping a GPU out for hold
// after the report that showed a new one (0: only while that report is
// the newest).
func NewHealthFilter(critical []uint64, hold time.Duration) *HealthFilter {
	if critical == nil {
		critical = DefaultCriticalXids()
	}
	return &HealthFilter{critical: slices.Clone(critical), hold: hold, gpus: make(map[gpuKey]*xidHistory)}
}

// Name implements [Filter].
func (*HealthFilter) Name() string { return "health" }

// Filter implements [Filter].
func (h *HealthFilter) Filter(_ *Request, in, out []*store.Endpoint) []*store.Endpoint {
	out, _ = h.filter(in, out)
	return out
}

// filter is Filter that also says whether it fell back to keeping all.
func (h *HealthFilter) filter(in, out []*store.Endpoint) ([]*store.Endpoint, bool) {
	out = out[:0]
	for _, ep := range in {
		if h.healthy(ep) {
			out = append(out, ep)
		}
	}
	if len(out) == 0 && len(in) > 0 {
		return append(out, in...), true
	}
	return out, false
}

func (h *HealthFilter) healthy(ep *store.Endpoint) bool { return h.Reason(ep) == "" }

// Why the health filter holds an endpoint out, as Reason returns it.
const (
	HoldModelServerStale = "model_server_stale"
	HoldGPULost          = "gpu_lost"
	HoldRowRemapFailed   = "row_remap_failed"
	HoldRowRemapPending  = "row_remap_pending"
	HoldECCUncorrected   = "ecc_uncorrected"
	HoldXid              = "xid"
)

// HoldReasons lists every reason Reason can give.
func HoldReasons() []string {
	return []string{HoldModelServerStale, HoldGPULost, HoldRowRemapFailed, HoldRowRemapPending, HoldECCUncorrected, HoldXid}
}

// Reason says why ep is held out, or "" when it may take work. It is
// deterministic for a given report: asking again about the same report
// (a metrics scrape after the picks) gives the same answer.
func (h *HealthFilter) Reason(ep *store.Endpoint) string {
	// A stale report is unknown, not unhealthy; but a GPU its last report
	// showed lost, with unsafe memory or with a new critical Xid stays out.
	if !ep.Stale && ep.ModelServer().GetStale() {
		return HoldModelServerStale
	}
	// Every GPU's Xid history advances with each report, held out or not,
	// so an Xid seen while a GPU was out for another reason is not new
	// once that reason ends.
	sample := sampleNanos(ep.ReportSample)
	reason := ""
	for _, g := range ep.GPUs {
		xid := h.newXid(ep.Node, g, sample)
		if reason != "" {
			continue
		}
		switch hl := g.GetHealth(); {
		case hl.GetLost():
			reason = HoldGPULost
		case MemoryHold(hl) != "":
			reason = MemoryHold(hl)
		case xid:
			reason = HoldXid
		}
	}
	if reason != "" {
		return reason
	}
	// A GPU the pod holds that this report has no reading of (the agent's
	// NVML sample missed its deadline on a busy node, or NVML failed) keeps
	// what its last reading said: one that was lost stays out until a
	// report reads it again.
	if uuids := ep.Pod.GetGpuUuids(); len(ep.GPUs) < len(uuids) {
		for _, u := range uuids {
			if !slices.ContainsFunc(ep.GPUs, func(g *telemetryv1.GPU) bool { return g.GetUuid() == u }) && h.lastLost(ep.Node, u) {
				return HoldGPULost
			}
		}
	}
	return ""
}

// MemoryHold says why a GPU's memory is unsafe until the GPU is reset, or
// "": a failed row remap (the bank has no spare row left: the GPU needs
// service), a pending one (the faulty row is still mapped in until the
// reset applies the remap), or an uncorrectable ECC error counted in the
// volatile counter (since the driver loaded or the GPU was last reset; a
// reset clears it). dcgm-exporter users alert on the same three fields.
// The hold lasts as long as the agent's reports show the state, with no
// timer: a reset or a replaced GPU is what ends it.
func MemoryHold(h *telemetryv1.GPUHealth) string {
	switch {
	case h.GetRowRemapFailed():
		return HoldRowRemapFailed
	case h.GetRowRemapPending():
		return HoldRowRemapPending
	case h.GetEccUncorrected() > 0:
		return HoldECCUncorrected
	}
	return ""
}

// HeldOut counts v's endpoints that the picker's health filters hold out,
// by reason (every reason of HoldReasons is present, 0 when none).
func (p *Picker) HeldOut(v *store.View) map[string]int {
	out := make(map[string]int, len(HoldReasons()))
	for _, r := range HoldReasons() {
		out[r] = 0
	}
	for _, f := range p.filters {
		h, ok := f.(*HealthFilter)
		if !ok {
			continue
		}
		for _, ep := range v.Endpoints {
			if r := h.Reason(ep); r != "" {
				out[r]++
			}
		}
	}
	return out
}

// lastLost reports whether the last reading of node's GPU uuid said it
// was lost.
func (h *HealthFilter) lastLost(node, uuid string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.gpus[gpuKey{node, uuid}]
	return st != nil && st.lost
}

// newXid reports whether g, a GPU of node, shows a critical Xid that is
// new as of the report sampled at sample, remembering its counts and
// whether it was lost for the next report. On the request path it runs once per GPU per view, not per
// request, and in time linear in the report's Xid entries.
func (h *HealthFilter) newXid(node string, g *telemetryv1.GPU, sample int64) bool {
	xids := g.GetHealth().GetXidErrors()
	key := gpuKey{node, g.GetUuid()}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.gpus[key]
	if st == nil {
		h.evictIfFull()
		// The first report of a GPU is its baseline.
		h.gpus[key] = &xidHistory{sample: sample, counts: h.criticalCounts(xids, nil), lost: g.GetHealth().GetLost()}
		return false
	}
	if sample >= st.sample {
		st.lost = g.GetHealth().GetLost()
	}
	if sample > st.sample {
		// A lower count (the agent restarted) becomes the new baseline.
		now := h.criticalCounts(xids, st.counts[:0:0])
		if increased(st.counts, now) {
			st.newAt = sample
		}
		st.sample, st.counts = sample, now
	}
	return st.newAt != 0 && sample >= st.newAt && sample <= st.newAt+int64(h.hold)
}

// criticalCounts appends the count of each critical code in xids to dst,
// one entry per code: a code repeated in the report (an agent never sends
// that, a forged report might) counts once, at its largest count. dst
// never grows past the number of critical codes, so this is linear in
// len(xids) and increased stays small.
func (h *HealthFilter) criticalCounts(xids []*telemetryv1.XidCount, dst []xidCount) []xidCount {
	for _, x := range xids {
		code := x.GetCode()
		if !slices.Contains(h.critical, code) {
			continue
		}
		if i := slices.IndexFunc(dst, func(c xidCount) bool { return c.code == code }); i >= 0 {
			dst[i].count = max(dst[i].count, x.GetCount())
			continue
		}
		dst = append(dst, xidCount{code, x.GetCount()})
	}
	return dst
}

// increased reports whether any code's count in now is above its count in
// before (a code absent before counts as 0).
func increased(before, now []xidCount) bool {
	for _, n := range now {
		var prev uint64
		for _, b := range before {
			if b.code == n.code {
				prev = b.count
			}
		}
		if n.count > prev {
			return true
		}
	}
	return false
}

// evictIfFull drops the entry sampled longest ago when the map is full.
// h.mu is held.
func (h *HealthFilter) evictIfFull() {
	if len(h.gpus) < maxXidGPUs {
		return
	}
	var oldest gpuKey
	var at int64 = 1<<63 - 1
	for k, st := range h.gpus {
		if st.sample < at {
			oldest, at = k, st.sample
		}
	}
	delete(h.gpus, oldest)
}
