package extproc

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// TestBodyTooLarge: a body over --extproc.max-body-bytes gets 413, as
// Envoy's own buffer limit answers, whether Content-Length announces it or
// the chunks reach it.
func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	opts.MaxBodyBytes = 4096
	for _, tt := range []struct {
		name string
		msgs []*extprocv3.ProcessingRequest
	}{
		{"content-length over the limit", []*extprocv3.ProcessingRequest{postHeaders("content-length", "5000")}},
		{"chunks over the limit", []*extprocv3.ProcessingRequest{postHeaders(), reqBody(bytes.Repeat([]byte(" "), 3000), false), reqBody(bytes.Repeat([]byte(" "), 3000), false)}},
		{"one chunk over the limit", []*extprocv3.ProcessingRequest{postHeaders(), reqBody(bytes.Repeat([]byte(" "), 5000), true)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &fakeDecider{eps: threeEndpoints}
			srv, err := New(d, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := startGRPC(t, srv)
			e := h.open(t)
			e.send(tt.msgs...)
			wantImmediate(t, e, 413)
			if err := e.end(); err != nil {
				t.Fatal(err)
			}
			if n := srv.Stats().Refused["body_too_large"]; n != 1 {
				t.Errorf("refused body_too_large %d, want 1", n)
			}
			eventually(t, "nothing buffered", func() bool { return srv.Stats().BufferedBytes == 0 })
		})
	}
}

// TestStalledBodiesBounded reproduces the stalled-upload attack in
// miniature (the issue measured 60 streams of just under 10 MiB taking
// the picker to 842 MiB): streams that send most of a large body and
// stall fill the budget and no more; the rest get 429 with Retry-After,
// and the bytes held never exceed the budget.
func TestStalledBodiesBounded(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	opts.MaxBodyBytes, opts.MaxBufferedBytes = 64<<10, 256<<10
	d := &fakeDecider{eps: threeEndpoints}
	srv, err := New(d, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := startGRPC(t, srv)
	chunk := bytes.Repeat([]byte(" "), 15<<10)
	accepted, refused := 0, 0
	var stalled []*envoy
	for range 20 {
		e := h.open(t)
		e.send(postHeaders("content-length", strconv.Itoa(64<<10)))
		for range 4 { // 60 KiB of the 64 announced
			if err := e.s.Send(reqBody(chunk, false)); err != nil {
				break
			}
		}
		// A refused stream is answered at once; an accepted one stays
		// silent. Tell them apart by the server's counters.
		before := refused
		eventually(t, "the stream taken or refused", func() bool {
			st := srv.Stats()
			r := int(st.Refused["buffer_full"])
			if r > before {
				refused = r
				return true
			}
			return st.BufferedBytes >= int64(accepted+1)*60<<10
		})
		if refused > before {
			wantRetryAfter(t, e.recv())
		} else {
			accepted++
			stalled = append(stalled, e)
		}
		if b := srv.Stats().BufferedBytes; b > opts.MaxBufferedBytes {
			t.Fatalf("%d bytes held, over the %d budget", b, opts.MaxBufferedBytes)
		}
	}
	if accepted == 0 || refused == 0 || accepted+refused != 20 || accepted > 4 {
		t.Errorf("%d accepted, %d refused: want the budget (4 streams of 60 KiB) filled, the rest refused", accepted, refused)
	}
	for _, e := range stalled {
		e.cancel()
	}
	eventually(t, "every byte released once the streams are gone", func() bool { return srv.Stats().BufferedBytes == 0 })
	if reqs, _ := d.calls(); len(reqs) != 0 {
		t.Errorf("%d decisions for stalled requests", len(reqs))
	}
}

// TestPreallocationCapped: a request that announces a 10 MiB body and
// sends 100 bytes does not make the picker allocate 10 MiB.
func TestPreallocationCapped(t *testing.T) {
	d := &fakeDecider{eps: threeEndpoints}
	srv, err := New(d, DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func() {
		fs := &fakeStream{ctx: context.Background(), in: []*extprocv3.ProcessingRequest{
			postHeaders("content-length", strconv.Itoa(DefaultMaxBodyBytes)), reqBody(bytes.Repeat([]byte(" "), 100), false),
		}}
		_ = srv.Process(fs)
	}
	run() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	run()
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("%d bytes allocated for a 100-byte body that announced 10 MiB", got)
	}
}

// TestResponseBufferBounded: the JSON response kept to read its usage
// counts against the same budget; when the budget is spent the response
// still passes through whole, only its usage goes unread.
func TestResponseBufferBounded(t *testing.T) {
	t.Parallel()
	opts := DefaultOptions()
	opts.MaxBodyBytes, opts.MaxBufferedBytes = 4096, 4096
	d := &fakeDecider{eps: threeEndpoints[:1]}
	srv, err := New(d, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := startGRPC(t, srv)
	resp := []byte(`{"choices":[{"text":"` + string(bytes.Repeat([]byte("x"), 2500)) + `"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`)

	respond := func(e *envoy) Outcome {
		t.Helper()
		e.send(postHeaders(), reqBody([]byte(`{"model":"m"}`), true))
		recvRouted(t, e, "10.0.0.1:8000", "m", DefaultChunkBytes)
		e.send(respHeaders(false, ":status", "200", "content-type", "application/json"))
		e.recv()
		var echoed []byte
		for i, p := range split(resp, 4) {
			e.send(respBody(p, i == 3))
			echoed = append(echoed, streamed(t, e.recv(), false).GetBody()...)
		}
		if !bytes.Equal(echoed, resp) {
			t.Fatal("response not passed through whole")
		}
		if err := e.end(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Done", func() bool { _, dones := d.calls(); return len(dones) > 0 })
		_, dones := d.calls()
		return dones[len(dones)-1].outcome
	}
	if o := respond(h.open(t)); o.PromptTokens != 3 || o.CompletionTokens != 4 || o.RequestBytes != len(`{"model":"m"}`) {
		t.Fatalf("usage %d/%d of a %d-byte request with the budget free, want 3/4 of 13 bytes", o.PromptTokens, o.CompletionTokens, o.RequestBytes)
	}

	// Another request holds most of the budget with its body.
	hog := h.open(t)
	hog.send(postHeaders(), reqBody(bytes.Repeat([]byte(" "), 3000), false))
	eventually(t, "the hog's body held", func() bool { return srv.Stats().BufferedBytes >= 3000 })
	if o := respond(h.open(t)); o.PromptTokens != 0 || o.CompletionTokens != 0 {
		t.Errorf("usage %d/%d read with the budget spent: the response was kept over it", o.PromptTokens, o.CompletionTokens)
	}
	if b := srv.Stats().BufferedBytes; b > opts.MaxBufferedBytes {
		t.Errorf("%d bytes held, over the %d budget", b, opts.MaxBufferedBytes)
	}
	hog.cancel()
	eventually(t, "nothing held", func() bool { return srv.Stats().BufferedBytes == 0 })
}
