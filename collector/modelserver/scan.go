package modelserver

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// sample is one sample of a wanted family: its label pairs, as the text
// between the braces (unparsed; label reads them on demand), and its value.
type sample struct {
	labels []byte
	value  float64
}

// scan reads a text exposition (Prometheus text 0.0.4 or OpenMetrics
// 1.0) in one pass and keeps, for each name of want, its samples in
// p.samples[i]. It builds no parser objects: a model server's page is
// mostly histogram buckets the source never reads, so a line whose name
// is not wanted costs a comparison of its first bytes. The lines it
// keeps are checked as strictly as the Prometheus text parser checks
// them (label syntax, UTF-8 label values, the value, an optional
// timestamp; one HELP and one TYPE per name, TYPE a known type), and a
// malformed one fails the whole scrape. A family past MaxSeriesPerFamily
// samples stops being kept at one past the cap; the caller leaves it
// out.
func (p *parser) scan(body []byte, want []string) error {
	p.resetSamples(len(want))
	lineNo := 0
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		lineNo++
		if err := p.scanLine(line, want); err != nil {
			return fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	return nil
}

// resetSamples empties the per-family sample lists, keeping their memory.
func (p *parser) resetSamples(n int) {
	for len(p.samples) < n {
		p.samples = append(p.samples, nil)
	}
	p.samples = p.samples[:n]
	for i := range p.samples {
		p.samples[i] = p.samples[i][:0]
	}
	p.seen = append(p.seen[:0], make([]uint8, n)...)
}

// Bits of parser.seen: a HELP or TYPE line was read for the name.
const (
	seenHelp uint8 = 1 << iota
	seenType
)

func (p *parser) scanLine(line []byte, want []string) error {
	line = bytes.TrimRight(bytes.TrimLeft(line, " \t"), "\r")
	if len(line) == 0 {
		return nil
	}
	if line[0] == '#' {
		return p.scanComment(line[1:], want)
	}
	end := nameEnd(line)
	i := wanted(line[:end], want)
	if i < 0 {
		return nil
	}
	if len(p.samples[i]) > MaxSeriesPerFamily {
		return nil // left out whole by the caller; the rest costs nothing
	}
	s, err := parseSample(line[end:])
	if err != nil {
		return fmt.Errorf("%s: %w", want[i], err)
	}
	p.samples[i] = append(p.samples[i], s)
	return nil
}

// scanComment checks the HELP and TYPE lines of wanted names; other
// comments (including OpenMetrics' UNIT and EOF) are skipped.
func (p *parser) scanComment(c []byte, want []string) error {
	c = bytes.TrimLeft(c, " \t")
	var bit uint8
	switch {
	case bytes.HasPrefix(c, []byte("HELP")):
		bit = seenHelp
	case bytes.HasPrefix(c, []byte("TYPE")):
		bit = seenType
	default:
		return nil
	}
	kind := c[:4]
	if len(c) == 4 || (c[4] != ' ' && c[4] != '\t') {
		return nil // "#TYPEx": a comment, not a TYPE line
	}
	c = bytes.TrimLeft(c[4:], " \t")
	end := nameEnd(c)
	i := wanted(c[:end], want)
	if i < 0 {
		return nil
	}
	rest := bytes.TrimSpace(c[end:])
	if bit == seenType && len(rest) == 0 {
		return nil // no type given: the text parser ignores it too
	}
	if p.seen[i]&bit != 0 {
		return fmt.Errorf("%s: a second %s line", want[i], kind)
	}
	p.seen[i] |= bit
	if bit == seenType {
		switch strings.ToLower(string(rest)) {
		case "gauge", "counter", "untyped", "histogram", "summary", "gaugehistogram", "info", "stateset", "unknown":
		default:
			return fmt.Errorf("%s: unknown metric type %q", want[i], rest)
		}
	}
	return nil
}

// nameEnd is the length of the metric name at the start of line.
func nameEnd(line []byte) int {
	for i, c := range line {
		if c == '{' || c == ' ' || c == '\t' {
			return i
		}
	}
	return len(line)
}

var (
	errLabels = errors.New("malformed label pairs")
	errValue  = errors.New("malformed sample value")
)

// parseSample reads what follows a sample's name: an optional label set,
// the value and an optional timestamp.
func parseSample(rest []byte) (sample, error) {
	var s sample
	if len(rest) > 0 && rest[0] == '{' {
		n, err := checkLabels(rest[1:])
		if err != nil {
			return s, err
		}
		s.labels, rest = rest[1:1+n], rest[2+n:]
	} else if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
		return s, errValue
	}
	val, ts := field(rest)
	if len(val) == 0 {
		return s, errValue
	}
	v, err := strconv.ParseFloat(string(val), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return s, fmt.Errorf("%w %q", errValue, val)
	}
	if len(ts) > 0 {
		t, more := field(ts)
		if len(more) > 0 {
			return s, errValue
		}
		if _, err := strconv.ParseFloat(string(t), 64); err != nil {
			return s, fmt.Errorf("malformed timestamp %q", t)
		}
	}
	s.value = v
	return s, nil
}

// field splits the first blank-separated field off b.
func field(b []byte) (f, rest []byte) {
	i := skipSpace(b, 0)
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[skipSpace(b, j):]
}

// checkLabels validates the label pairs after a '{' up to the closing
// '}', whose index it returns: name="value" pairs (a name may be quoted,
// as UTF-8 names are), separated by commas, a trailing comma allowed,
// values UTF-8 with \\, \" and \n escapes.
func checkLabels(b []byte) (int, error) {
	i := 0
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return i, nil
		}
		n, err := labelName(b[i:])
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, i+n)
		if i >= len(b) || b[i] != '=' {
			return 0, errLabels
		}
		i = skipSpace(b, i+1)
		if n, err = quoted(b[i:]); err != nil {
			return 0, err
		}
		i = skipSpace(b, i+n)
		switch {
		case i < len(b) && b[i] == ',':
			i++
		case i < len(b) && b[i] == '}':
			return i, nil
		default:
			return 0, errLabels
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// labelName is the length of the label name (bare or quoted) at b's start.
func labelName(b []byte) (int, error) {
	if len(b) > 0 && b[0] == '"' {
		return quoted(b)
	}
	n := 0
	for n < len(b) && (b[n] == '_' || 'a' <= b[n]|0x20 && b[n]|0x20 <= 'z' || n > 0 && '0' <= b[n] && b[n] <= '9') {
		n++
	}
	if n == 0 {
		return 0, errLabels
	}
	return n, nil
}

// quoted is the length of the quoted string at b's start, quotes
// included; it must be valid UTF-8 and use only the text format's escapes.
func quoted(b []byte) (int, error) {
	if len(b) == 0 || b[0] != '"' {
		return 0, errLabels
	}
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '"':
			if !utf8.Valid(b[1:i]) {
				return 0, fmt.Errorf("%w: label value not UTF-8", errLabels)
			}
			return i + 1, nil
		case '\\':
			if i+1 >= len(b) || (b[i+1] != '\\' && b[i+1] != '"' && b[i+1] != 'n') {
				return 0, fmt.Errorf("%w: bad escape", errLabels)
			}
			i++
		}
	}
	return 0, fmt.Errorf("%w: unterminated label value", errLabels)
}

// label returns the value of the label name in a checked label set;
// ok is false when it is absent. Escapes are undone (allocating only
// then).
func label(labels []byte, name string) (string, bool) {
	i := 0
	for {
		i = skipSpace(labels, i)
		if i >= len(labels) {
			return "", false
		}
		n, err := labelName(labels[i:])
		if err != nil {
			return "", false
		}
		key := labels[i : i+n]
		i = skipSpace(labels, i+n) + 1 // past '='
		i = skipSpace(labels, i)
		m, err := quoted(labels[i:])
		if err != nil {
			return "", false
		}
		val := labels[i+1 : i+m-1]
		if keyIs(key, name) {
			return unescape(val), true
		}
		i = skipSpace(labels, i+m)
		if i < len(labels) && labels[i] == ',' {
			i++
		}
	}
}

// keyIs compares a bare or quoted label name with name.
func keyIs(key []byte, name string) bool {
	if len(key) >= 2 && key[0] == '"' {
		return unescape(key[1:len(key)-1]) == name
	}
	return string(key) == name
}

func unescape(v []byte) string {
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v)
	}
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
			if v[i] == 'n' {
				out = append(out, '\n')
				continue
			}
		}
		out = append(out, v[i])
	}
	return string(out)
}

// appendQuoted appends s as a quoted label value of the text format.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', '"':
			b = append(b, '\\', s[i])
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, s[i])
		}
	}
	return append(b, '"')
}
