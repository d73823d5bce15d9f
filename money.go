package levee

import (
	"database/sql/driver"
	"fmt"
	"math"
	"strconv"

	"github.com/shopspring/decimal"
)

// Micros is an amount of money (or a number of shares) in millionths of a
// unit: 1.5 is Micros(1_500_000). Every amount in Levee has exactly six
// decimal places; int64 micro-units keep the hot path free of allocation and
// reach ±9.2 trillion units, far beyond any city's treasury. At the edges it
// becomes a decimal string ("1.500000") in JSON and NUMERIC in PostgreSQL.
type Micros int64

// Scale is the number of micro-units in one unit.
const Scale = 1_000_000

// MaxMoney is the one bound on money in Levee: one trillion units
// (1e18 micro-units). Every amount and every balance is within ±MaxMoney:
// what ParseMicros, UnmarshalJSON, MicrosFromDecimal and Scan accept; every
// ledger account's balance, which the ledger refuses to take past it (409);
// and so the money in circulation, which is minus the balance of the issuance
// account, the only account that may go negative. The sum of the absolute
// balances of all accounts is therefore at most 2·MaxMoney = 2e18 micros,
// within int64 (9.2e18) with room for adding a few more bounded amounts
// without overflow, and far within the NUMERIC(20,6) columns (1e14 units).
// The ledger's columns carry the same bound as a CHECK (migration 0012).
const MaxMoney Micros = 1_000_000_000_000 * Scale

// Capped returns m + x, both ≥ 0, stopped at MaxMoney. It is for
// statistics that grow without bound, such as a market's volume (a pair of
// traders can round-trip the same money through a market for ever), never
// for money held, which the ledger keeps within MaxMoney itself. A figure
// that reached the cap reads as "at least MaxMoney".
func (m Micros) Capped(x Micros) Micros {
	if x >= MaxMoney-m {
		return MaxMoney
	}
	return m + x
}

// Units returns n whole units as Micros.
func Units(n int64) Micros { return Micros(n * Scale) }

// ParseMicros parses a plain decimal string such as "12", "-0.5" or
// "1000.123456". It is strict on purpose, because it reads outside input:
// ASCII digits only, at most one leading '-', at most six decimal places, no
// exponent, no '+', no spaces, and at most MaxMoney in magnitude.
func ParseMicros(s string) (Micros, error) { return parseMicros(s) }

// parseMicros is ParseMicros for text or bytes: Scan reads a column's
// bytes without a string of them (a commit scans a balance per trader).
func parseMicros[T string | []byte](s T) (Micros, error) {
	if len(s) == 0 {
		return 0, fmt.Errorf("empty amount")
	}
	neg := false
	if s[0] == '-' {
		neg, s = true, s[1:]
	}
	intPart, frac, hasDot := s, s[:0], false
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac, hasDot = s[:i], s[i+1:], true
			break
		}
	}
	if len(intPart) == 0 {
		return 0, fmt.Errorf("amount needs a digit before the decimal point")
	}
	if hasDot && len(frac) == 0 {
		return 0, fmt.Errorf("amount needs a digit after the decimal point")
	}
	if len(frac) > 6 {
		return 0, fmt.Errorf("amount has more than 6 decimal places")
	}
	var v int64
	for i := 0; i < len(intPart); i++ {
		c := intPart[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("amount must be a plain decimal number like 12.5")
		}
		v = v*10 + int64(c-'0')
		if v > int64(MaxMoney/Scale) {
			return 0, fmt.Errorf("amount is too large")
		}
	}
	for i := 0; i < 6; i++ {
		v *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("amount must be a plain decimal number like 12.5")
			}
			v += int64(c - '0')
		}
	}
	if Micros(v) > MaxMoney {
		return 0, fmt.Errorf("amount is too large")
	}
	if neg {
		v = -v
	}
	return Micros(v), nil
}

// MustMicros parses s and panics on error. For constants and tests only.
func MustMicros(s string) Micros {
	m, err := ParseMicros(s)
	if err != nil {
		panic(err)
	}
	return m
}

// String formats m with exactly six decimal places.
func (m Micros) String() string {
	var buf [32]byte
	return string(m.AppendTo(buf[:0]))
}

// AppendTo appends the six-place decimal form of m to b.
func (m Micros) AppendTo(b []byte) []byte {
	u := uint64(m)
	if m < 0 {
		b = append(b, '-')
		u = uint64(-m)
		if m == math.MinInt64 {
			u = uint64(math.MaxInt64) + 1
		}
	}
	b = strconv.AppendUint(b, u/Scale, 10)
	b = append(b, '.')
	f := u % Scale
	for d := uint64(Scale / 10); d > 0; d /= 10 {
		b = append(b, byte('0'+f/d%10))
	}
	return b
}

// Decimal returns m as a decimal with six places.
func (m Micros) Decimal() decimal.Decimal { return decimal.New(int64(m), -6) }

// Float returns m in units as a float64, for maths that is rounded back explicitly.
func (m Micros) Float() float64 { return float64(m) / Scale }

// MicrosFromDecimal converts d to Micros, refusing values with more than six
// decimal places or beyond ±MaxMoney.
func MicrosFromDecimal(d decimal.Decimal) (Micros, error) {
	scaled := d.Shift(6)
	if !scaled.Equal(scaled.Truncate(0)) {
		return 0, fmt.Errorf("amount has more than 6 decimal places")
	}
	if scaled.Abs().GreaterThan(decimal.NewFromInt(int64(MaxMoney))) {
		return 0, fmt.Errorf("amount is too large")
	}
	return Micros(scaled.IntPart()), nil
}

// MarshalJSON writes m as a JSON string, so no client parses money as a float.
func (m Micros) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 24)
	b = append(b, '"')
	b = m.AppendTo(b)
	return append(b, '"'), nil
}

// UnmarshalJSON accepts only a JSON string holding a plain decimal. A JSON
// number is refused: it may already have been rounded by the sender.
func (m *Micros) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("amount must be a decimal string like \"12.5\"")
	}
	v, err := ParseMicros(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Value stores m as a NUMERIC literal.
func (m Micros) Value() (driver.Value, error) { return m.String(), nil }

// MicrosArray is amounts as one parameter of type numeric[], written in
// its text form, {1.500000,-2.000000}, without a string per amount: the
// journal sends several such columns for every commit (issue 18).
type MicrosArray []Micros

// Value is the array's text form; a nil array is NULL.
func (a MicrosArray) Value() (driver.Value, error) {
	if a == nil {
		return nil, nil
	}
	return string(a.AppendTo(nil)), nil
}

// AppendArrayText appends the array's text form to b, as Value writes it;
// false (nothing appended) for a nil array, which is NULL.
func (a MicrosArray) AppendArrayText(b []byte) ([]byte, bool) {
	if a == nil {
		return b, false
	}
	return a.AppendTo(b), true
}

// AppendTo appends the array's text form to b.
func (a MicrosArray) AppendTo(b []byte) []byte {
	b = append(b, '{')
	for i, m := range a {
		if i > 0 {
			b = append(b, ',')
		}
		b = m.AppendTo(b)
	}
	return append(b, '}')
}

// Scan reads a NUMERIC column. It accepts what ParseMicros accepts, at most
// MaxMoney in magnitude, so a value that was written can always be read back.
func (m *Micros) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case []byte:
		if p, err := parseMicros(v); err == nil {
			*m = p
			return nil
		}
		s = string(v)
	case string:
		s = v
	case int64:
		if v > int64(MaxMoney/Scale) || v < -int64(MaxMoney/Scale) {
			return fmt.Errorf("scan micros %d: amount is too large", v)
		}
		*m = Micros(v * Scale)
		return nil
	case nil:
		*m = 0
		return nil
	default:
		return fmt.Errorf("scan micros: unsupported type %T", src)
	}
	// What PostgreSQL sends for a numeric(20,6) column, a plain decimal of
	// at most six places, is read without big numbers (ParseMicros gives
	// the same value as the decimal path for every string it accepts);
	// anything else (more places, an exponent) goes through decimal.
	if v, err := ParseMicros(s); err == nil {
		*m = v
		return nil
	}
	d, err := decimal.NewFromString(s)
	if err != nil {
		return fmt.Errorf("scan micros %q: %w", s, err)
	}
	v, err := MicrosFromDecimal(d)
	if err != nil {
		return fmt.Errorf("scan micros %q: %w", s, err)
	}
	*m = v
	return nil
}
