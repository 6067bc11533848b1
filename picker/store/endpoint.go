// Package store is the picker's view of the endpoints it may route to: the
// InferencePool's ready pods (picker/pool) joined with the newest report
// of the node each pod runs on (picker/ingest), by pod IP but only with a
// report that can be the pod's (its node's, for its UID; see Build). A
// view is built when either side changes and is immutable: the request
// path reads it without locks.
package store

import (
	"time"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
)

// Endpoint is one model-server pod of the pool with its node's telemetry.
type Endpoint struct {
	// Address is "ip:port", the value the gateway routes to.
	Address   string
	IP        string
	Port      int
	Namespace string
	Name      string
	// Node is the node whose report mentions the pod; empty when none does.
	Node string
	// Pod is the pod's entry in that report (model-server stats, GPU
	// UUIDs); nil when no report mentions the pod.
	Pod *telemetryv1.Pod
	// GPUs are the report's entries for the pod's GPUs.
	GPUs []*telemetryv1.GPU
	// ReportTime is when the picker received the node's report and
	// ReportSample when the node sampled it; zero without a report.
	ReportTime, ReportSample time.Time
	// Stale is true when there is no report for the pod, or the node's
	// report is older than its TTL: the telemetry must not be trusted.
	Stale bool
	// Refused is true when reports named the pod's IP but none could be
	// its pod's (another node's, another pod's UID, or two nodes
	// claiming it): the endpoint has no telemetry (Stale).
	Refused bool
	// Direct is the picker's own reading of the model server, taken
	// while no fresh report covers the pod (picker/direct). When set,
	// ModelServer returns it and Stale is false, while GPUs stay the last
	// report's (or none): only the agent reads GPUs, so the scorers that
	// read them treat the endpoint as unknown (GPUUnknown).
	Direct *telemetryv1.ModelServer
}

// ModelServer returns the endpoint's model-server reading, or nil: the
// picker's own when it has one, else the report's.
func (e *Endpoint) ModelServer() *telemetryv1.ModelServer {
	if e.Direct != nil {
		return e.Direct
	}
	return e.Pod.GetModelServer()
}

// GPUUnknown reports whether the endpoint's GPU readings are not fresh:
// no fresh report covers it (whether or not the picker reads its model
// server itself).
func (e *Endpoint) GPUUnknown() bool { return e.Stale || e.Direct != nil }

// View is an immutable set of endpoints, sorted by address.
type View struct {
	Endpoints []*Endpoint
	// Built is when the view was built.
	Built time.Time
	// Refused counts the endpoints marked Refused.
	Refused int
}
