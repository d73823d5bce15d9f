package market

import (
	"bytes"
	"fmt"
	"time"

	"levee"
)

// Trade is one committed trade, as listed publicly. The engine fills it from
// a fill and stores it; its columns scan straight into it (Side and Prices
// read their text forms).
type Trade struct {
	MarketID  int64        `json:"market_id,string" db:"market_id"`
	Seq       int64        `json:"seq" db:"seq"`
	AccountID int64        `json:"-" db:"account_id"`
	Outcome   int          `json:"outcome" db:"outcome"`
	Side      Side         `json:"side" db:"side"`
	Shares    levee.Micros `json:"shares" db:"shares"`
	Amount    levee.Micros `json:"amount" db:"amount"`
	Prices    Prices       `json:"prices" db:"prices"`
	At        time.Time    `json:"at" db:"at"`
	Key       *string      `json:"-" db:"idempotency_key"`
	// FromHeld is the part of a buy's cost in a conditional market paid
	// from the trader's balance inside the market (the rest came from
	// cash). Not stored: the ledger entry of the trade records it.
	FromHeld levee.Micros `json:"-" db:"-"`
}

// ParseSide reads "buy" or "sell".
func ParseSide(s string) (Side, error) {
	switch s {
	case "buy":
		return Buy, nil
	case "sell":
		return Sell, nil
	}
	return 0, fmt.Errorf("side %q: want buy or sell", s)
}

// MarshalText writes "buy" or "sell".
func (sd Side) MarshalText() ([]byte, error) { return []byte(sd.String()), nil }

// UnmarshalText reads "buy" or "sell".
func (sd *Side) UnmarshalText(b []byte) error {
	v, err := ParseSide(string(b))
	*sd = v
	return err
}

// Scan reads a side stored as text.
func (sd *Side) Scan(src any) error {
	switch v := src.(type) {
	case string:
		return sd.UnmarshalText([]byte(v))
	case []byte:
		return sd.UnmarshalText(v)
	}
	return fmt.Errorf("scan side from %T", src)
}

// Prices are one price per outcome, in micro-units.
type Prices []levee.Micros

// String writes p as an array literal, "{0.500000,0.500000}", the text
// form PostgreSQL reads for NUMERIC[].
func (p Prices) String() string { return string(levee.MicrosArray(p).AppendTo(nil)) }

// Scan reads the text form of a NUMERIC[] array, as String writes it; NULL
// is no prices (empty, not nil, so it lists as []).
func (p *Prices) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*p = Prices{}
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan prices from %T", src)
	}
	inner, ok := bytes.CutPrefix(b, []byte("{"))
	if inner, ok2 := bytes.CutSuffix(inner, []byte("}")); ok && ok2 {
		out := Prices{}
		if len(inner) > 0 {
			for _, f := range bytes.Split(inner, []byte(",")) {
				var m levee.Micros
				if err := m.Scan(string(f)); err != nil {
					return fmt.Errorf("scan prices: %w", err)
				}
				out = append(out, m)
			}
		}
		*p = out
		return nil
	}
	return fmt.Errorf("scan prices: %q is not an array", b)
}
