package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/headroom-dev/headroom/picker/extproc"
)

func TestPickTimesQuantiles(t *testing.T) {
	t.Parallel()
	var h pickHist
	for i := 1; i <= 100; i++ {
		h.observe(time.Duration(i) * time.Millisecond)
	}
	early := h.snapshot()
	h.observe(10 * time.Second)
	p := h.snapshot()
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 10 * time.Second}} {
		got := p.Quantile(tc.q)
		if d := float64(got-tc.want) / float64(tc.want); d < -0.05 || d > 0.05 {
			t.Errorf("q%v = %v, want %v within a bucket (5%%)", tc.q, got, tc.want)
		}
	}
	since := p.Since(early)
	if since.Count() != 1 || since.Quantile(0.5) < 9*time.Second {
		t.Errorf("since the early snapshot: %d picks, median %v; want the one of 10 s", since.Count(), since.Quantile(0.5))
	}
	if (PickTimes{}).Quantile(0.99) != 0 {
		t.Error("an empty histogram has a quantile")
	}
}

// slowDecider answers after a delay.
type slowDecider struct {
	*decider
	delay time.Duration
}

func (d slowDecider) Decide(ctx context.Context, r *extproc.Request) (extproc.Decision, error) {
	time.Sleep(d.delay)
	return d.decider.Decide(ctx, r)
}

// The gateway records each pick from the request headers sent to the
// destination received, and tells the client which endpoint served.
func TestPickTimesRecorded(t *testing.T) {
	t.Parallel()
	a := startModel(t, nil)
	const delay = 20 * time.Millisecond
	pickerAddr, _ := startPicker(t, slowDecider{newDecider(a.addr), delay}, "")
	g, url := startGateway(t, Options{Endpoints: []string{a.addr}, Pickers: []string{pickerAddr}})
	c := client(t)
	for range 5 {
		resp, body := post(t, c, url, chatBody(10, false))
		if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderUpstream) != a.addr {
			t.Fatalf("status %d, %s %q; want 200 from %s: %s", resp.StatusCode, HeaderUpstream, resp.Header.Get(HeaderUpstream), a.addr, body)
		}
	}
	p := g.Stats().PickTimes
	if p.Count() != 5 || p.Quantile(0.01) < delay*95/100 {
		t.Fatalf("%d picks, fastest %v; want 5, none faster than the decider's %v", p.Count(), p.Quantile(0.01), delay)
	}
}
