// Package hostile is the hostile load run (make bench-hostile): the real
// headroom-picker binary, fed by real agent streamers, serves well-behaved
// gateway traffic (a Go client playing Envoy's ext_proc part at 100
// requests a second) once quietly and once under attack, on loopback only
// and bounded in count and time:
//
//   - abandoned: 1,000 header-only requests routed to one endpoint and
//     never answered nor closed;
//   - stalled: 100 requests announcing 10 MiB that send just under it and
//     stall;
//   - tokens: 10,000 fake ServiceAccount tokens a second at the telemetry
//     ingest (the picker in token mode against a real kube-apiserver from
//     envtest);
//   - crossnode: an agent reporting another node's pod IP as saturated.
//
// It prints the picker's RSS before, at the peak and after, the
// well-behaved requests routed and their pick latency against the quiet
// run, the in-flight counts once the attack stops, and whether the real
// agents stayed connected, and fails when a bound of docs/reliability.md
// is broken. The run itself is TestHostileLoad, skipped unless
// HEADROOM_BENCH_HOSTILE=1; see hostile_test.go for its other settings.
package hostile
