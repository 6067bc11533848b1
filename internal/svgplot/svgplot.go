// Package svgplot draws small line charts as SVG: a few series over a
// shared x axis, with axes, ticks and a legend, for the benchmark reports.
// It uses nothing but the standard library.
package svgplot

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Series is one line: Y[i] at X[i]; a NaN Y leaves a gap.
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a line chart.
type Chart struct {
	Title, XLabel, YLabel string
	Series                []Series
	// Width and Height in pixels (default 640×400).
	Width, Height int
}

// palette is colour-blind-safe (Okabe–Ito).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000"}

const (
	marginL, marginR, marginT, marginB = 70.0, 150.0, 40.0, 50.0
)

// Write renders the chart.
func (c Chart) Write(w io.Writer) error {
	width, height := float64(c.Width), float64(c.Height)
	if width <= 0 || height <= 0 {
		width, height = 640, 400
	}
	xmin, xmax, ymax := c.bounds()
	if len(c.Series) == 0 || math.IsInf(xmin, 0) {
		return fmt.Errorf("svgplot: chart %q has no points", c.Title)
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	ymax = niceCeil(ymax)
	pw, ph := width-marginL-marginR, height-marginT-marginB
	px := func(x float64) float64 { return marginL + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return marginT + ph - y/ymax*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", marginL+pw/2, html.EscapeString(c.Title))
	c.axes(&b, xmin, xmax, ymax, px, py, pw, ph)
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		c.line(&b, s, color, px, py)
		ly := marginT + 10 + float64(i)*20
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2.5"/>`+"\n", width-marginR+15, ly, width-marginR+40, ly, color)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", width-marginR+46, ly, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (c Chart) bounds() (xmin, xmax, ymax float64) {
	xmin, xmax = math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for i, x := range s.X {
			if i >= len(s.Y) || math.IsNaN(s.Y[i]) {
				continue
			}
			xmin, xmax, ymax = math.Min(xmin, x), math.Max(xmax, x), math.Max(ymax, s.Y[i])
		}
	}
	return xmin, xmax, ymax
}

func (c Chart) axes(b *strings.Builder, xmin, xmax, ymax float64, px, py func(float64) float64, pw, ph float64) {
	fmt.Fprintf(b, `<g stroke="#444"><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/></g>`+"\n",
		marginL, marginT+ph, marginL+pw, marginT+ph, marginL, marginT, marginL, marginT+ph)
	for i := 0; i <= 5; i++ {
		y := ymax * float64(i) / 5
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, py(y), marginL+pw, py(y))
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", marginL-6, py(y), tick(y))
	}
	for _, x := range xTicks(c.Series, xmin, xmax) {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", px(x), marginT+ph+18, tick(x))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", marginL+pw/2, marginT+ph+40, html.EscapeString(c.XLabel))
	fmt.Fprintf(b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", marginT+ph/2, html.EscapeString(c.YLabel))
}

func (c Chart) line(b *strings.Builder, s Series, color string, px, py func(float64) float64) {
	var pts []string
	flush := func() {
		if len(pts) > 1 {
			fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		}
		pts = pts[:0]
	}
	for i, x := range s.X {
		if i >= len(s.Y) || math.IsNaN(s.Y[i]) {
			flush()
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(x), py(s.Y[i])))
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", px(x), py(s.Y[i]), color)
	}
	flush()
}

// xTicks are the distinct x values of the series (benchmarks have a few
// load levels), or six even ticks when there are many.
func xTicks(series []Series, xmin, xmax float64) []float64 {
	seen := map[float64]bool{}
	var xs []float64
	for _, s := range series {
		for _, x := range s.X {
			if !seen[x] {
				seen[x] = true
				xs = append(xs, x)
			}
		}
	}
	if len(xs) <= 10 {
		return xs
	}
	xs = xs[:0]
	for i := 0; i <= 5; i++ {
		xs = append(xs, xmin+(xmax-xmin)*float64(i)/5)
	}
	return xs
}

// niceCeil rounds v up to 1, 2, 2.5 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}
