package hostile

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/headroom-dev/headroom/sim/gateway"
)

// dialExtProc opens n gateway connections to the picker's ext_proc port:
// TLS not verified, as gateways connect.
func dialExtProc(t *testing.T, addr string, n int) []extprocv3.ExternalProcessorClient {
	t.Helper()
	out := make([]extprocv3.ExternalProcessorClient, n)
	for i := range out {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(credentials.NewTLS(gateway.InsecurePickerTLS())))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		out[i] = extprocv3.NewExternalProcessorClient(conn)
	}
	return out
}

func hdrs(kv ...string) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return hm
}

func reqHeaders(eos bool, kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hdrs(kv...), EndOfStream: eos}}}
}

func reqBody(b []byte, eos bool) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: b, EndOfStream: eos}}}
}

// pinned adds the subset hint that confines the pick to endpoint.
func pinned(r *extprocv3.ProcessingRequest, endpoint string) *extprocv3.ProcessingRequest {
	s, _ := structpb.NewStruct(map[string]any{"x-gateway-destination-endpoint-subset": []any{endpoint}})
	r.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.lb.subset_hint": s}}
	return r
}

// wellBehaved is one phase of well-behaved traffic: what a gateway saw.
type wellBehaved struct {
	sent, routed int
	refused      map[int]int // ImmediateResponse status
	failed       int         // stream errors
	picks        []time.Duration
	dest         map[string]int // primary destination of routed requests
	cores        float64        // the picker's CPU use meanwhile
	decideP99    time.Duration  // the picker's own scoring time, p99 (bucket bound)
}

func (w *wellBehaved) share(endpoint string) float64 {
	if w.routed == 0 {
		return 0
	}
	return float64(w.dest[endpoint]) / float64(w.routed)
}

func (w *wellBehaved) quantile(q float64) time.Duration {
	if len(w.picks) == 0 {
		return 0
	}
	s := slices.Clone(w.picks)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}

// serveUntil is serveWellBehaved until stop is closed.
func serveUntil(clients []extprocv3.ExternalProcessorClient, rate float64, stop <-chan struct{}) *wellBehaved {
	return serve(clients, rate, func(time.Duration) bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	})
}

// serveWellBehaved plays Envoy for rate requests a second during d, open
// loop (a slow picker does not slow the offered load): each a 1 KiB chat
// completion, answered at once with a short JSON response. The pick time
// is from the last request message sent to the picker's decision.
func serveWellBehaved(clients []extprocv3.ExternalProcessorClient, rate float64, d time.Duration) *wellBehaved {
	return serve(clients, rate, func(elapsed time.Duration) bool { return elapsed >= d })
}

func serve(clients []extprocv3.ExternalProcessorClient, rate float64, over func(elapsed time.Duration) bool) *wellBehaved {
	w := &wellBehaved{refused: map[int]int{}, dest: map[string]int{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start, n := time.Now(), 0
	for now := range tick.C {
		if over(now.Sub(start)) {
			break
		}
		for due := int(now.Sub(start).Seconds() * rate); n < due; n++ {
			c := clients[n%len(clients)]
			wg.Go(func() {
				o := oneRequest(c)
				mu.Lock()
				defer mu.Unlock()
				w.sent++
				switch {
				case o.err != nil:
					w.failed++
				case o.status != 0:
					w.refused[o.status]++
				default:
					w.routed++
					w.picks = append(w.picks, o.pick)
					w.dest[o.dest]++
				}
			})
		}
	}
	wg.Wait()
	return w
}

type outcome struct {
	dest   string
	pick   time.Duration
	status int
	err    error
}

func oneRequest(c extprocv3.ExternalProcessorClient) outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := c.Process(ctx)
	if err != nil {
		return outcome{err: err}
	}
	body := fmt.Appendf(nil, `{"model":"llama","messages":[{"role":"user","content":"%d %s"}]}`, rand.Uint64(), bytes.Repeat([]byte("x"), 900))
	if err := st.Send(reqHeaders(false, ":method", "POST", ":path", "/v1/chat/completions", "content-type", "application/json", "content-length", strconv.Itoa(len(body)))); err != nil {
		return outcome{err: err}
	}
	if err := st.Send(reqBody(body, true)); err != nil {
		return outcome{err: err}
	}
	sent := time.Now()
	var o outcome
	for first := true; ; first = false {
		r, err := st.Recv()
		if err != nil {
			return outcome{err: err}
		}
		if first {
			o.pick = time.Since(sent)
		}
		if ir := r.GetImmediateResponse(); ir != nil {
			return outcome{status: int(ir.GetStatus().GetCode())}
		}
		for _, h := range r.GetRequestHeaders().GetResponse().GetHeaderMutation().GetSetHeaders() {
			if h.GetHeader().GetKey() == "x-gateway-destination-endpoint" {
				primary, _, _ := bytes.Cut(h.GetHeader().GetRawValue(), []byte(","))
				o.dest = string(primary)
			}
		}
		if r.GetRequestBody().GetResponse().GetBodyMutation().GetStreamedResponse().GetEndOfStream() {
			break
		}
	}
	resp := []byte(`{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":200,"completion_tokens":2}}`)
	for _, m := range []*extprocv3.ProcessingRequest{
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: hdrs(":status", "200", "content-type", "application/json")}}},
		{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: resp, EndOfStream: true}}},
	} {
		if err := st.Send(m); err != nil {
			return outcome{err: err}
		}
		if _, err := st.Recv(); err != nil {
			return outcome{err: err}
		}
	}
	_ = st.CloseSend()
	_, _ = st.Recv()
	return o
}

// attack is a running attack: stop ends it (its clients go away) and
// waits; results is what it saw. settled, when set, waits until the
// attack is in place (every stream decided, held or refused).
type attack struct {
	name    string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	results func() string
	placed  sync.WaitGroup
}

func (a *attack) stop() { a.cancel(); a.wg.Wait() }

// abandoned opens n header-only requests pinned to endpoint, lets each be
// routed, and then neither answers nor closes it.
func abandoned(clients []extprocv3.ExternalProcessorClient, n int, endpoint string) *attack {
	ctx, cancel := context.WithCancel(context.Background())
	a := &attack{name: "abandoned", cancel: cancel}
	var routed, refused, failed atomic.Int64
	sem := make(chan struct{}, 64) // opened 64 at a time
	a.placed.Add(n)
	for i := range n {
		a.wg.Go(func() {
			placed := sync.OnceFunc(a.placed.Done)
			defer placed()
			sem <- struct{}{}
			st, err := clients[i%len(clients)].Process(ctx)
			if err == nil {
				err = st.Send(pinned(reqHeaders(true, ":method", "GET", ":path", "/v1/models", "x-gateway-model-name", "llama"), endpoint))
			}
			var r *extprocv3.ProcessingResponse
			if err == nil {
				r, err = st.Recv()
			}
			<-sem
			switch {
			case err != nil:
				failed.Add(1)
				return
			case r.GetImmediateResponse() != nil:
				refused.Add(1)
				return
			}
			routed.Add(1)
			placed()
			_, _ = st.Recv() // held until the picker or the attacker ends it
		})
	}
	a.results = func() string {
		return fmt.Sprintf("%d routed and held, %d refused, %d failed", routed.Load(), refused.Load(), failed.Load())
	}
	return a
}

// stalled opens n uploads that announce size bytes, send all but the last
// 64 KiB, and stall.
func stalled(clients []extprocv3.ExternalProcessorClient, n, size int) *attack {
	ctx, cancel := context.WithCancel(context.Background())
	a := &attack{name: "stalled", cancel: cancel}
	var held, refused, failed atomic.Int64
	payload := bytes.Repeat([]byte(" "), size) // shared: every chunk is a sub-slice
	const chunk = 64 << 10
	sem := make(chan struct{}, 8)
	a.placed.Add(n)
	for i := range n {
		a.wg.Go(func() {
			placed := sync.OnceFunc(a.placed.Done)
			defer placed()
			sem <- struct{}{}
			st, err := clients[i%len(clients)].Process(ctx)
			if err != nil {
				<-sem
				failed.Add(1)
				return
			}
			answer := make(chan *extprocv3.ProcessingResponse, 1)
			go func() { r, _ := st.Recv(); answer <- r }()
			err = st.Send(reqHeaders(false, ":method", "POST", "content-type", "application/json", "content-length", strconv.Itoa(size)))
			for off := 0; err == nil && off+chunk < size; off += chunk {
				err = st.Send(reqBody(payload[off:off+chunk], false))
			}
			<-sem
			select {
			case r := <-answer:
				if r.GetImmediateResponse().GetStatus().GetCode() == 429 {
					refused.Add(1)
				} else {
					failed.Add(1)
				}
			case <-ctx.Done():
			case <-time.After(2 * time.Second): // silent: the body is held
				held.Add(1)
				placed()
				select {
				case <-answer:
				case <-ctx.Done():
				}
			}
		})
	}
	a.results = func() string {
		return fmt.Sprintf("%d held, %d refused 429, %d failed", held.Load(), refused.Load(), failed.Load())
	}
	return a
}
