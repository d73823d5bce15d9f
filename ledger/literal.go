package ledger

import (
	"bytes"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"
)

// appendExecute appends head(arg, ...)tail to b with the arguments as SQL
// literals: a Session's EXECUTE of a prepared statement.
func appendExecute(b []byte, head string, args []any, tail string) ([]byte, error) {
	b = append(b, head...)
	if len(args) == 0 { // EXECUTE name() is a syntax error
		return append(b, tail...), nil
	}
	b = append(b, '(')
	for i, a := range args {
		if i > 0 {
			b = append(b, ", "...)
		}
		var err error
		if b, err = appendLiteral(b, a); err != nil {
			return nil, fmt.Errorf("ledger session: argument %d: %w", i+1, err)
		}
	}
	b = append(b, ')')
	return append(b, tail...), nil
}

// execute is appendExecute into a string of its own.
func execute(head string, args []any, tail string) (string, error) {
	b, err := appendExecute(make([]byte, 0, len(head)+len(tail)+64*len(args)), head, args, tail)
	return string(b), err
}

// appendLiteral appends v to b as literal(v) writes it. The journal's
// arguments (integers, text, bytes and arrays of them: a commit's trades,
// postings and balances, thousands of elements) are written straight into
// b in one pass; going through driver.Valuer, pq's array text and
// pq.QuoteLiteral made three copies of each array and was a fifth of the
// journal's own CPU (issue 18; BenchmarkExecuteCommit, a commit of 128
// orders: 190 µs and 434 KB of garbage that way, 40 µs and none this
// way). Anything else takes literal's way. The
// output is literal's, byte for byte (TestAppendLiteralIsLiteral,
// FuzzAppendLiteral).
func appendLiteral(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case int64:
		b = append(b, '\'')
		return append(strconv.AppendInt(b, x, 10), '\''), nil
	case string:
		return appendQuoted(b, x)
	case []byte:
		return appendQuotedBytea(b, x), nil
	case pq.Int64Array:
		return appendInt64Array(b, x), nil
	case *pq.Int64Array:
		return appendInt64Array(b, deref(x)), nil
	case pq.StringArray:
		return appendStringArray(b, x)
	case *pq.StringArray:
		return appendStringArray(b, deref(x))
	case pq.ByteaArray:
		return appendByteaArray(b, x), nil
	case *pq.ByteaArray:
		return appendByteaArray(b, deref(x)), nil
	case arrayText:
		start := len(b)
		var ok bool
		b, ok = x.AppendArrayText(append(b, '\''))
		if !ok {
			return append(b[:start], "NULL"...), nil
		}
		if !bytes.ContainsAny(b[start+1:], "'\\\x00") { // nothing to escape: numbers, times, braces
			return append(b, '\''), nil
		}
		b = b[:start] // quoted the general way below
	}
	lit, err := literal(v)
	if err != nil {
		return nil, err
	}
	return append(b, lit...), nil
}

// deref is *p, or the zero value (a nil array: NULL) for a nil p.
func deref[T any](p *T) (v T) {
	if p != nil {
		v = *p
	}
	return v
}

// arrayText is an array parameter that writes its own text form (as its
// driver.Valuer's Value returns it) into a buffer, without a string per
// element, or reports that it is nil (NULL). appendLiteral quotes that text
// itself when it holds nothing to escape, and otherwise writes v the general
// way. levee.MicrosArray and the journal's times and prices are such.
type arrayText interface {
	AppendArrayText(b []byte) ([]byte, bool)
}

// appendQuoted is pq.QuoteLiteral(s): quotes doubled, and when s holds a
// backslash, backslashes doubled in an E'…' string, so that the literal
// means s whatever standard_conforming_strings says.
func appendQuoted(b []byte, s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, errNUL
	}
	if strings.IndexByte(s, '\\') >= 0 {
		b = append(b, " E'"...)
	} else {
		b = append(b, '\'')
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '\\':
			b = append(b, c, c)
		default:
			b = append(b, c)
		}
	}
	return append(b, '\''), nil
}

// errNUL refuses text with a NUL byte: the simple query protocol sends
// the query as a C string, which would end there, inside the literal; and
// PostgreSQL's text holds none.
var errNUL = errors.New("a NUL byte in text")

// appendQuotedBytea is bytea's hex form quoted: E'\\x…'.
func appendQuotedBytea(b, x []byte) []byte {
	b = append(b, ` E'\\x`...)
	b = hex.AppendEncode(b, x)
	return append(b, '\'')
}

// appendInt64Array is pq.Int64Array's text, quoted; NULL for nil.
func appendInt64Array(b []byte, a []int64) []byte {
	if a == nil {
		return append(b, "NULL"...)
	}
	b = append(b, "'{"...)
	for i, n := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, n, 10)
	}
	return append(b, "}'"...)
}

// appendStringArray is pq.StringArray's text (every element in double
// quotes, with \ and " escaped by a backslash), quoted as appendQuoted
// quotes it; NULL for nil.
func appendStringArray(b []byte, a []string) ([]byte, error) {
	if a == nil {
		return append(b, "NULL"...), nil
	}
	escaped := false // the array's text holds a backslash: an E'' string
	for _, s := range a {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, errNUL
		}
		escaped = escaped || strings.ContainsAny(s, `"\`)
	}
	if escaped {
		b = append(b, " E'{"...)
	} else {
		b = append(b, "'{"...)
	}
	for i, s := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(s); j++ {
			switch c := s[j]; c {
			case '\'':
				b = append(b, c, c)
			case '"': // \" in the array's text, its backslash doubled
				b = append(b, '\\', '\\', c)
			case '\\': // \\ in the array's text, each doubled
				b = append(b, '\\', '\\', '\\', '\\')
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	return append(b, "}'"...), nil
}

// appendByteaArray is pq.ByteaArray's text ({"\\x…",…}), quoted; NULL for
// nil. Its backslashes make it an E'…' string.
func appendByteaArray(b []byte, a [][]byte) []byte {
	if a == nil {
		return append(b, "NULL"...)
	}
	if len(a) == 0 {
		return append(b, "'{}'"...)
	}
	b = append(b, " E'{"...)
	for i, x := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `"\\\\x`...)
		b = hex.AppendEncode(b, x)
		b = append(b, '"')
	}
	return append(b, "}'"...)
}

// literal writes v as a quoted SQL literal of the text lib/pq would have
// sent for it as a parameter: strings (and arrays, whose Value is their text
// form) quoted by pq.QuoteLiteral, which escapes quotes and backslashes, so
// no value can end the literal; numbers quoted too (a bare -9223372036854775808
// would be minus a number too big for bigint); byte strings as bytea, in its
// hex form. A quoted literal has no type until it takes the prepared
// statement's parameter's, and is read by that type's input function, as a
// parameter sent as text is.
func literal(v any) (string, error) {
	dv, err := driver.DefaultParameterConverter.ConvertValue(v)
	if err != nil {
		return "", err
	}
	switch x := dv.(type) {
	case nil:
		return "NULL", nil
	case int64:
		return "'" + strconv.FormatInt(x, 10) + "'", nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", errors.New("not a finite number")
		}
		return "'" + strconv.FormatFloat(x, 'g', -1, 64) + "'", nil
	case bool:
		return "'" + strconv.FormatBool(x) + "'", nil
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return "", errNUL
		}
		return pq.QuoteLiteral(x), nil
	case []byte:
		return pq.QuoteLiteral(`\x` + hex.EncodeToString(x)), nil
	case time.Time:
		return pq.QuoteLiteral(string(pq.FormatTimestamp(x))), nil
	}
	return "", fmt.Errorf("no SQL literal for %T", dv)
}
