package svgplot

import (
	"encoding/xml"
	"math"
	"strings"
	"testing"
)

func TestChartIsWellFormedSVGWithEverySeries(t *testing.T) {
	c := Chart{Title: "p90 TTFT <hetero>", XLabel: "offered load (%)", YLabel: "seconds", Series: []Series{
		{Name: "round-robin", X: []float64{50, 70, 85}, Y: []float64{0.2, 0.9, 3.1}},
		{Name: "headroom", X: []float64{50, 70, 85}, Y: []float64{0.1, math.NaN(), 0.8}},
	}}
	var b strings.Builder
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	dec := xml.NewDecoder(strings.NewReader(out))
	for {
		if _, err := dec.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v\n%s", err, out)
			}
			break
		}
	}
	for _, want := range []string{"round-robin", "headroom", "&lt;hetero&gt;", ">85<", ">4<"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// round-robin is one 3-point line; headroom's NaN splits it into two
	// single points, which draw no line.
	if n := strings.Count(out, "<polyline"); n != 1 {
		t.Errorf("%d polylines, want 1", n)
	}
	if n := strings.Count(out, "<circle"); n != 5 {
		t.Errorf("%d points, want 5", n)
	}
}

func TestEmptyChartFails(t *testing.T) {
	if err := (Chart{Title: "x"}).Write(&strings.Builder{}); err == nil {
		t.Error("a chart with no points rendered")
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.7: 1, 3.1: 5, 12: 20, 2.2: 2.5, 100: 100} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}
