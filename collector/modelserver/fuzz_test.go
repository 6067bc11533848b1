package modelserver

import (
	"errors"
	"math"
	"reflect"
	"testing"

	telemetryv1 "github.com/headroom-dev/headroom/proto/headroom/telemetry/v1"
	"github.com/headroom-dev/headroom/snapshot"
)

// FuzzParse feeds the model-server parser arbitrary responses, as text or
// as delimited protobuf, for every engine: it must never panic, and what
// it returns must hold only values a model server can mean, within the
// report's limits.
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 10m ./collector/modelserver/
func FuzzParse(f *testing.F) {
	for _, tc := range fixtureStats {
		f.Add(fixture(f, tc.file), uint8(0), false)
	}
	f.Add([]byte("vllm:num_requests_waiting -1\nvllm:kv_cache_usage_perc 1.5\nvllm:num_requests_running 1e308\nvllm:num_requests_running{a=\"b\"} 1e308\n"), uint8(0), false)
	f.Add([]byte("nv_trt_llm_request_metrics{request_type=\"waiting\"} NaN\n"), uint8(3), false)
	f.Add([]byte{0x05, 0x0a, 0x03, 'a', 'b', 'c'}, uint8(1), true)
	engines := Engines()
	p := newParser()
	f.Fuzz(func(t *testing.T, body []byte, engine uint8, protobuf bool) {
		ct := "text/plain; version=0.0.4"
		if protobuf {
			ct = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
		}
		e := engines[int(engine)%len(engines)]
		st, err := p.parse(e, body, ct)
		if !protobuf {
			sameAsReference(t, e, body, st, err)
		}
		if err != nil {
			return
		}
		checkStats(t, st)
	})
}

// sameAsReference checks the line scanner against the text path it
// replaced: whatever the Prometheus text parser read, the scanner reads
// the same (it may refuse more: a page the reference could not parse
// whole is not compared).
func sameAsReference(t *testing.T, e Engine, body []byte, got snapshot.ModelServerStats, err error) {
	t.Helper()
	want, refErr := referenceParse(e, body)
	switch {
	case refErr != nil:
		return
	case err != nil && !errors.Is(err, ErrNoMetrics):
		t.Fatalf("scanner refused what the text parser read: %v", err)
	case !reflect.DeepEqual(got, want):
		t.Fatalf("scanner read %+v (latency %+v), the text parser %+v (latency %+v)", got, got.Latency, want, want.Latency)
	}
}

func checkStats(t *testing.T, st snapshot.ModelServerStats) {
	t.Helper()
	count := func(name string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			t.Fatalf("%s = %v", name, v)
		}
	}
	count("waiting", st.Waiting)
	count("running", st.Running)
	if st.HasKVCacheUsage && !(st.KVCacheUsage >= 0 && st.KVCacheUsage <= 1) {
		t.Fatalf("KV usage %v", st.KVCacheUsage)
	}
	if l := st.Latency; l != nil {
		count("ttft sum", l.TTFTSum)
		count("ttft count", l.TTFTCount)
		count("tpot sum", l.TPOTSum)
		count("tpot count", l.TPOTCount)
	}
	if l := st.LoRA; l != nil {
		for _, names := range [][]string{l.Running, l.Waiting} {
			if len(names) > telemetryv1.MaxLoRAAdapters {
				t.Fatalf("%d adapters", len(names))
			}
			for _, n := range names {
				if n == "" || len(n) > telemetryv1.MaxLoRANameBytes {
					t.Fatalf("adapter name of %d bytes", len(n))
				}
			}
		}
	}
}
