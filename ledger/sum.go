package ledger

import (
	"encoding/json"
	"math/big"
	"math/bits"

	"levee"
)

// Sum is an exact sum of amounts in micro-units, as a 128-bit integer: no
// sum of int64 amounts that fits in memory can overflow it. Verify adds up
// postings and balances with it, so a ledger with amounts or balances beyond
// levee.MaxMoney (only a database changed behind the ledger's back) is
// reported for what it is, never with a total that wrapped around or that
// stopped at the first value it could not add. The zero value is 0.
type Sum struct {
	hi int64
	lo uint64
}

// Add returns s + m.
func (s Sum) Add(m levee.Micros) Sum {
	lo, carry := bits.Add64(s.lo, uint64(m), 0)
	hi := s.hi + int64(carry)
	if m < 0 {
		hi-- // the high word of m sign-extended is -1
	}
	return Sum{hi: hi, lo: lo}
}

// AddSum returns s + t.
func (s Sum) AddSum(t Sum) Sum {
	lo, carry := bits.Add64(s.lo, t.lo, 0)
	return Sum{hi: s.hi + t.hi + int64(carry), lo: lo}
}

// Neg returns -s.
func (s Sum) Neg() Sum {
	lo, borrow := bits.Sub64(0, s.lo, 0)
	return Sum{hi: -s.hi - int64(borrow), lo: lo}
}

// IsZero reports whether s is 0.
func (s Sum) IsZero() bool { return s.hi == 0 && s.lo == 0 }

// Micros returns s as levee.Micros and whether it fits in one.
func (s Sum) Micros() (levee.Micros, bool) {
	if s.hi == 0 && s.lo < 1<<63 || s.hi == -1 && s.lo >= 1<<63 {
		return levee.Micros(int64(s.lo)), true
	}
	return 0, false
}

// Big returns s as a big.Int of micro-units.
func (s Sum) Big() *big.Int {
	b := new(big.Int).SetInt64(s.hi)
	b.Lsh(b, 64)
	return b.Add(b, new(big.Int).SetUint64(s.lo))
}

// String formats s with exactly six decimal places, like levee.Micros.
func (s Sum) String() string {
	if m, ok := s.Micros(); ok {
		return m.String()
	}
	b := s.Big()
	neg := b.Sign() < 0
	b.Abs(b)
	q, r := new(big.Int).QuoRem(b, big.NewInt(levee.Scale), new(big.Int))
	frac := r.String()
	for len(frac) < 6 {
		frac = "0" + frac
	}
	out := q.String() + "." + frac
	if neg {
		out = "-" + out
	}
	return out
}

// MarshalJSON writes s as a decimal string, like levee.Micros.
func (s Sum) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }
