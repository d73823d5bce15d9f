package contracting

import (
	"math/big"
	"sort"
	"time"

	"levee"
	"levee/market"
)

// PricePoint is a market's yes-price from At on (the price after a trade).
type PricePoint struct {
	At  time.Time
	Yes levee.Micros
}

// TWAP is the time-weighted average of a price path over [from, to], in
// micro-units, rounded down. The path starts at initial, and each point
// sets the price from its time on; points at or before from only set the
// price carried into the window, points after to are ignored. Times count
// in whole microseconds.
func TWAP(initial levee.Micros, path []PricePoint, from, to time.Time) levee.Micros {
	span := to.Sub(from).Microseconds()
	if span <= 0 {
		return initial
	}
	pts := append([]PricePoint(nil), path...)
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].At.Before(pts[j].At) })
	price, cursor := initial, from
	sum := new(big.Int)
	term := new(big.Int)
	for _, p := range pts {
		if !p.At.After(from) {
			price = p.Yes
			continue
		}
		if p.At.After(to) {
			break
		}
		sum.Add(sum, term.Mul(big.NewInt(int64(price)), big.NewInt(p.At.Sub(cursor).Microseconds())))
		price, cursor = p.Yes, p.At
	}
	sum.Add(sum, term.Mul(big.NewInt(int64(price)), big.NewInt(to.Sub(cursor).Microseconds())))
	return levee.Micros(sum.Quo(sum, big.NewInt(span)).Int64())
}

// ScoredBid is one line of a published award: a bid's price, the TWAP of
// its decision market's yes-price, and its score (price / TWAP, rounded
// down to the micro-unit for display; the ranking compares exactly).
type ScoredBid struct {
	Bid          int64         `json:"bid,string"`
	Organisation int64         `json:"organisation,string"`
	Market       int64         `json:"market,string"`
	Price        levee.Micros  `json:"price"`
	TWAP         levee.Micros  `json:"twap"`
	Score        *levee.Micros `json:"score"` // nil when the TWAP is 0
	Qualifies    bool          `json:"qualifies"`
}

// Rule is the award rule as published with every award.
const Rule = "Each bid's score is its price divided by the time-weighted average (TWAP) of its decision market's " +
	"yes-price over the TWAP window before the decision date (the price before the window's first trade carried in; " +
	"the initial price if the market never traded). Bids whose TWAP is below the tender's minimum confidence do not " +
	"qualify. The lowest score among qualifying bids wins; equal scores go to the earlier bid (lower id). If no bid " +
	"qualifies the tender is unsuccessful."

// Decide scores bids (in bid id order) and returns the index of the winner,
// or -1 when none qualifies.
func Decide(bids []ScoredBid, minConfidence levee.Micros) int {
	best := -1
	for i := range bids {
		b := &bids[i]
		b.Qualifies = b.TWAP > 0 && b.TWAP >= minConfidence
		if b.TWAP > 0 {
			s := new(big.Int).Mul(big.NewInt(int64(b.Price)), big.NewInt(levee.Scale))
			s.Quo(s, big.NewInt(int64(b.TWAP)))
			if s.IsInt64() {
				v := levee.Micros(s.Int64())
				b.Score = &v
			}
		}
		if !b.Qualifies {
			continue
		}
		if best < 0 {
			best = i
			continue
		}
		// price_i / twap_i < price_best / twap_best, exactly.
		l := new(big.Int).Mul(big.NewInt(int64(b.Price)), big.NewInt(int64(bids[best].TWAP)))
		r := new(big.Int).Mul(big.NewInt(int64(bids[best].Price)), big.NewInt(int64(b.TWAP)))
		if c := l.Cmp(r); c < 0 || c == 0 && b.Bid < bids[best].Bid {
			best = i
		}
	}
	return best
}

// splitPrice divides a price among milestones by their shares, each rounded
// down, the last taking the remainder so the parts sum to the price exactly.
func splitPrice(price levee.Micros, shares []levee.Micros) []levee.Micros {
	out := make([]levee.Micros, len(shares))
	var paid levee.Micros
	for i, s := range shares {
		if i == len(shares)-1 {
			out[i] = price - paid
			break
		}
		v := new(big.Int).Mul(big.NewInt(int64(price)), big.NewInt(int64(s)))
		v.Quo(v, big.NewInt(levee.Scale))
		out[i] = levee.Micros(v.Int64())
		paid += out[i]
	}
	return out
}

// initialYes is a new binary decision market's yes-price (uniform).
func initialYes(liquidity levee.Micros) (levee.Micros, error) {
	st, err := market.NewState(liquidity, make([]levee.Micros, 2))
	if err != nil {
		return 0, err
	}
	return st.PricesMicros()[yesOutcome], nil
}
