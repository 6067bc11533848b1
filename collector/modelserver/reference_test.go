package modelserver

import (
	"bytes"
	"fmt"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/headroom-dev/headroom/snapshot"
)

// referenceParse is the text path as it was before the line scanner: the
// wanted families' lines copied out (filterLines), parsed into
// client_model families by the Prometheus text parser, then extracted.
// It is the baseline BenchmarkParse measures the scanner against, and the
// oracle the scanner's results are compared with.
func referenceParse(e Engine, body []byte) (snapshot.ModelServerStats, error) {
	p := newParser()
	want := familiesOf(e)
	series := make([]int, len(want))
	filtered := filterLines(nil, body, want, series)
	tp := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := tp.TextToMetricFamilies(bytes.NewReader(filtered))
	if err != nil {
		return snapshot.ModelServerStats{}, fmt.Errorf("parse %s metrics: %w", e, err)
	}
	p.resetSamples(len(want))
	for i, n := range series {
		if n > MaxSeriesPerFamily && mfs[want[i]] != nil {
			delete(mfs, want[i])
			p.dropped.add(dropTooManySeries)
		}
	}
	for _, mf := range mfs {
		if err := p.addFamily(mf, want); err != nil {
			return snapshot.ModelServerStats{}, err
		}
	}
	return extract(e, fams{want, p.samples}, &p.dropped)
}

// filterLines appends to dst the lines of body that belong to the wanted
// families, counting each family's samples in series and stopping at one
// past MaxSeriesPerFamily.
func filterLines(dst, body []byte, want []string, series []int) []byte {
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i+1], body[i+1:]
		} else {
			body = nil
		}
		i := wanted(lineName(line), want)
		if i < 0 {
			continue
		}
		if series != nil && !isComment(line) {
			if series[i]++; series[i] > MaxSeriesPerFamily+1 {
				continue
			}
		}
		dst = append(dst, line...)
		if line[len(line)-1] != '\n' {
			dst = append(dst, '\n')
		}
	}
	return dst
}

func isComment(line []byte) bool {
	line = bytes.TrimLeft(line, " \t")
	return len(line) > 0 && line[0] == '#'
}

// lineName returns the metric name a line is about: the sample's name, or
// the name of a HELP or TYPE comment; nil for other lines.
func lineName(line []byte) []byte {
	line = bytes.TrimLeft(line, " \t")
	if len(line) > 0 && line[0] == '#' {
		line = bytes.TrimLeft(line[1:], " \t")
		if !bytes.HasPrefix(line, []byte("HELP")) && !bytes.HasPrefix(line, []byte("TYPE")) {
			return nil
		}
		line = bytes.TrimLeft(line[4:], " \t")
	}
	end := bytes.IndexAny(line, "{ \t\r\n")
	if end < 0 {
		end = len(line)
	}
	return line[:end]
}
