package extproc

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

var errBadModel = errors.New("invalid model name")

// checkModel refuses a model name that must not reach the
// x-gateway-model-name header or the scorers: over MaxModelBytes, not
// UTF-8, or holding a control character (C0, DEL or C1: a CR or LF would
// split the header, a NUL is refused by Envoy's header validation). The
// message says what is wrong without echoing the name.
func checkModel(m string) (msg string, err error) {
	switch {
	case len(m) > MaxModelBytes:
		return fmt.Sprintf("model name longer than %d bytes", MaxModelBytes), fmt.Errorf("%w: %d bytes", errBadModel, len(m))
	case !utf8.ValidString(m):
		return "model name is not UTF-8", fmt.Errorf("%w: not UTF-8", errBadModel)
	}
	for i, r := range m {
		if unicode.IsControl(r) {
			return "model name has a control character", fmt.Errorf("%w: control character U+%04X at byte %d", errBadModel, r, i)
		}
	}
	return "", nil
}
