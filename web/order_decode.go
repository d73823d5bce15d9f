package web

import (
	"bytes"
	"io"

	"github.com/labstack/echo/v5"

	"levee/input"
)

// decodeOrder decodes an order's body into f. The body nearly every order
// sends (a flat object of the order's own fields, each once, its strings
// printable ASCII without escapes, the outcome a small whole number) is read
// by scanOrder, a single pass over its bytes; any other body goes through
// input.DecodeJSON, which then decides, and answers a refusal, exactly as for
// any other route. The strict decoder's reflection, its second and third
// scans of the body and its allocations were the largest part of the
// handler's own CPU per order (BenchmarkOrderRequest). FuzzScanOrder holds
// scanOrder to input.DecodeJSON: on every body scanOrder takes, DecodeJSON
// must give the same fields.
func decodeOrder(c *echo.Context, f *orderFields) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		// The same bytes and the same error (a body over its limit):
		// DecodeJSON names it as it does everywhere.
		return input.DecodeJSON(io.MultiReader(bytes.NewReader(body), errorReader{err}), f)
	}
	if scanOrder(body, f) {
		return nil
	}
	*f = orderFields{}
	return input.DecodeJSON(bytes.NewReader(body), f)
}

type errorReader struct{ err error }

func (r errorReader) Read([]byte) (int, error) { return 0, r.err }

// scanOrder fills f from body when body is the common order body, and
// reports whether it was; false leaves f partly filled. It takes only what
// encoding/json reads the same way and input.DecodeJSON accepts: keys
// spelled exactly as orderFields names them (encoding/json would also match
// other cases), no key twice, strings of bytes 0x20-0x7E other than '"' and
// '\' (so no escape, no control character, nothing that is not UTF-8), the
// outcome 0 to 999,999,999 without leading zeros, all true or false, and
// JSON whitespace only between tokens.
func scanOrder(body []byte, f *orderFields) bool {
	i := skipSpace(body, 0)
	if i == len(body) || body[i] != '{' {
		return false
	}
	i = skipSpace(body, i+1)
	var seen uint
	if i < len(body) && body[i] == '}' {
		return skipSpace(body, i+1) == len(body)
	}
	for {
		key, j, ok := scanString(body, i)
		if !ok {
			return false
		}
		i = skipSpace(body, j)
		if i == len(body) || body[i] != ':' {
			return false
		}
		i = skipSpace(body, i+1)
		var bit uint
		switch string(key) {
		case "outcome":
			bit = 1
			n, j, ok := scanWhole(body, i)
			if !ok {
				return false
			}
			f.Outcome, i = &n, j
		case "all":
			bit = 2
			switch {
			case bytes.HasPrefix(body[i:], []byte("true")):
				f.All, i = true, i+4
			case bytes.HasPrefix(body[i:], []byte("false")):
				f.All, i = false, i+5
			default:
				return false
			}
		default:
			dst, b := f.text(string(key))
			if dst == nil {
				return false
			}
			bit = b
			s, j, ok := scanString(body, i)
			if !ok {
				return false
			}
			*dst, i = string(s), j
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		i = skipSpace(body, i)
		if i == len(body) {
			return false
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			return skipSpace(body, i+1) == len(body)
		default:
			return false
		}
	}
}

// text returns the string field of f that key names and its bit in
// scanOrder's set of keys seen, or nil.
func (f *orderFields) text(key string) (*string, uint) {
	switch key {
	case "side":
		return &f.Side, 4
	case "shares":
		return &f.Shares, 8
	case "amount":
		return &f.Amount, 16
	case "limit_price":
		return &f.LimitPrice, 32
	case "max_cost":
		return &f.MaxCost, 64
	case "min_proceeds":
		return &f.MinProceeds, 128
	}
	return nil, 0
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanString reads a JSON string at b[i] made only of bytes 0x20-0x7E other
// than '"' and '\'; it returns its contents and the index after it.
func scanString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// scanWhole reads a JSON whole number of 1 to 9 digits, without a sign or
// leading zeros, at b[i], followed by something that cannot continue a
// number.
func scanWhole(b []byte, i int) (int, int, bool) {
	n, j := 0, i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		n = n*10 + int(b[j]-'0')
		j++
	}
	if d := j - i; d == 0 || d > 9 || (d > 1 && b[i] == '0') {
		return 0, 0, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	return n, j, true
}
