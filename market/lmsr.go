// Package market is the pure core of a Levee market: the logarithmic market
// scoring rule (LMSR) market maker and the orders evaluated against it. It does
// no I/O and keeps no state of its own: time, identities and storage belong to
// the caller, so replaying the same orders reproduces the same fills exactly.
//
// Every amount is a levee.Micros. The maths runs in float64 and is rounded to
// the micro-unit always in the house's favour; where float64 cannot tell which
// way a value rounds, an exact comparison decides (see exact.go), so each
// rounded result is the correctly rounded value of the exact real number and
// does not depend on the machine. docs/lmsr.md has the derivations.
package market

import (
	"fmt"
	"math"
	"slices"

	"levee"
)

// Limits on a market. They keep every intermediate value inside the range
// where float64 holds integers exactly (2^53 micro-units) and the error bounds
// of the float evaluation hold.
const (
	// MinOutcomes is the smallest number of outcomes a market can have.
	MinOutcomes = 2
	// MaxOutcomes is the largest number of outcomes a market can have.
	MaxOutcomes = 256
	// MinLiquidity is the smallest liquidity parameter b.
	MinLiquidity = levee.Micros(1 * levee.Scale)
	// MaxLiquidity is the largest liquidity parameter b.
	MaxLiquidity = levee.Micros(10_000_000 * levee.Scale)
	// MaxShares bounds the outstanding quantity of every outcome, and so the
	// size of any one order, in either direction.
	MaxShares = levee.Micros(1_000_000_000 * levee.Scale)
)

// State is an LMSR market maker: the liquidity parameter b and the vector q
// of outstanding shares per outcome, both in micro-units so that a state is
// stored and restored exactly. The zero State is not usable; make one with
// NewMarket or NewState. Only Apply changes a State: the other methods may run
// concurrently with each other, but not with Apply (one goroutine owns a
// market's working state, as the engine does).
type State struct {
	b levee.Micros
	q []levee.Micros
}

// NewMarket opens a market with liquidity b and n outcomes. probs are the
// initial probabilities in micro-units (0.25 is 250000); they must each be
// strictly between 0 and 1 and sum to exactly 1.000000. An empty probs means
// uniform. It returns the state and the subsidy: the most the market maker can
// lose, b·ln(1/min p), rounded up, which the caller must set aside.
//
// Because q is stored in micro-units, q_i = b·ln(p_i/min p) is rounded down;
// the prices of the state can so differ from probs in the last places. The
// subsidy is that of the stored state, so it bounds the loss exactly.
// Errors: ErrTooFewOutcomes, ErrTooManyOutcomes, ErrBadLiquidity,
// ErrBadProbabilities (all EINVALID).
func NewMarket(b levee.Micros, n int, probs []levee.Micros) (*State, levee.Micros, error) {
	if err := checkShape(b, n); err != nil {
		return nil, 0, err
	}
	q := make([]levee.Micros, n)
	if len(probs) != 0 {
		if len(probs) != n {
			return nil, 0, fmt.Errorf("%d probabilities for %d outcomes: %w", len(probs), n, ErrBadProbabilities)
		}
		var sum, pmin levee.Micros = 0, levee.Scale
		for _, p := range probs {
			if p <= 0 || p >= levee.Scale {
				return nil, 0, ErrBadProbabilities
			}
			sum += p
			pmin = min(pmin, p)
		}
		if sum != levee.Scale {
			return nil, 0, ErrBadProbabilities
		}
		for i, p := range probs {
			q[i] = initialQuantity(b, p, pmin)
		}
	}
	s := &State{b: b, q: q}
	return s, s.Subsidy(), nil
}

// NewState restores a stored state: liquidity b and outstanding shares q (q
// is copied). Errors: ErrTooFewOutcomes, ErrTooManyOutcomes, ErrBadLiquidity,
// ErrBadQuantity (all EINVALID).
func NewState(b levee.Micros, q []levee.Micros) (*State, error) {
	if err := checkShape(b, len(q)); err != nil {
		return nil, err
	}
	for _, v := range q {
		if v < -MaxShares || v > MaxShares {
			return nil, ErrBadQuantity
		}
	}
	return &State{b: b, q: append([]levee.Micros(nil), q...)}, nil
}

func checkShape(b levee.Micros, n int) error {
	switch {
	case n < MinOutcomes:
		return ErrTooFewOutcomes
	case n > MaxOutcomes:
		return ErrTooManyOutcomes
	case b < MinLiquidity || b > MaxLiquidity:
		return ErrBadLiquidity
	}
	return nil
}

// B returns the liquidity parameter.
func (s *State) B() levee.Micros { return s.b }

// Outcomes returns the number of outcomes.
func (s *State) Outcomes() int { return len(s.q) }

// Q returns a copy of the outstanding shares per outcome, for storage.
func (s *State) Q() []levee.Micros { return append([]levee.Micros(nil), s.q...) }

// Clone returns an independent copy of s.
func (s *State) Clone() *State { return &State{b: s.b, q: s.Q()} }

// Prices returns the instantaneous prices p_i = softmax(q/b), which sum to 1
// up to float rounding. They are for display and analysis; money never flows
// at these prices, only at the rounded costs of the methods below.
func (s *State) Prices() []float64 {
	p := make([]float64, len(s.q))
	pricesInto(p, s.b, s.q, -1, 0)
	return p
}

// PricesMicros returns the prices rounded to micro-units so that they sum to
// exactly 1.000000 (see RoundPrices).
func (s *State) PricesMicros() []levee.Micros {
	return s.AppendPricesMicros(make([]levee.Micros, 0, len(s.q)))
}

// AppendPricesMicros appends the rounded prices to dst, so a caller with a
// buffer quotes without allocating.
func (s *State) AppendPricesMicros(dst []levee.Micros) []levee.Micros {
	var buf [MaxOutcomes]float64
	p := buf[:len(s.q)]
	pricesInto(p, s.b, s.q, -1, 0)
	return RoundPrices(dst, p)
}

// pricesInto writes softmax(q/b) into p, with q[i] increased by delta when i
// is an outcome, so prices after a fill need no copy of q.
func pricesInto(p []float64, b levee.Micros, q []levee.Micros, i int, delta levee.Micros) {
	at := func(j int) levee.Micros {
		if j == i {
			return q[j] + delta
		}
		return q[j]
	}
	m := at(0)
	for j := 1; j < len(q); j++ {
		m = max(m, at(j))
	}
	bf := float64(b)
	var sum float64
	for j := range q {
		// q_j − m is exact in int64 and below 2^53, so only the division rounds.
		p[j] = math.Exp(float64(at(j)-m) / bf)
		sum += p[j]
	}
	for j := range p {
		p[j] /= sum
	}
}

// RoundPrices appends p rounded to micro-units to dst so that the rounded
// values sum to exactly 1.000000: each price is rounded down, and the
// micro-units left over go one each to the prices that lost the most in
// rounding (largest remainder; ties to the lower index). A price below 0.5
// micro-units can so show as 0.000000. The p must be non-negative and sum to 1
// up to float rounding; these prices are for display only.
func RoundPrices(dst []levee.Micros, p []float64) []levee.Micros {
	const idxMask = 1<<24 - 1 // p has fewer entries than this
	n := len(p)
	var keyBuf [MaxOutcomes]uint64
	keys := keyBuf[:0]
	if n > MaxOutcomes {
		keys = make([]uint64, 0, n)
	}
	dst = slices.Grow(dst, n)
	start := len(dst)
	var total levee.Micros
	for j, v := range p {
		x := v * levee.Scale
		f := math.Floor(x)
		dst = append(dst, levee.Micros(f))
		total += levee.Micros(f)
		// Sort key: the remainder to 2^-40 above, the index (reversed, so
		// the lower index wins a tie) below; plain integers sort fastest.
		keys = append(keys, uint64((x-f)*0x1p40)<<24|uint64(idxMask-j))
	}
	// The floors lose less than one micro-unit each, so fewer than n are
	// missing (float rounding of p aside, hence the clamp).
	left := min(max(int(levee.Scale-total), 0), n)
	if left == 0 {
		return dst
	}
	slices.Sort(keys)
	for _, k := range keys[n-left:] {
		dst[start+idxMask-int(k&idxMask)]++
	}
	return dst
}

// BuyCost returns what buying shares of outcome i costs: C(q + shares·e_i) −
// C(q) with C(q) = b·ln Σ exp(q_j/b), rounded up to the micro-unit.
// Errors: EINVALID (outcome, shares), ECONFLICT (past MaxShares).
func (s *State) BuyCost(i int, shares levee.Micros) (levee.Micros, error) {
	if err := s.checkTrade(i, shares, 1); err != nil {
		return 0, err
	}
	v := s.side(i)
	return s.buyCost(&v, i, int64(shares))
}

// SellProceeds returns what selling shares of outcome i pays: C(q) −
// C(q − shares·e_i), rounded down to the micro-unit. It does not know
// positions; Quote refuses short sales.
// Errors: EINVALID (outcome, shares), ECONFLICT (past −MaxShares).
func (s *State) SellProceeds(i int, shares levee.Micros) (levee.Micros, error) {
	if err := s.checkTrade(i, shares, -1); err != nil {
		return 0, err
	}
	v := s.side(i)
	return s.sellProceeds(&v, i, int64(shares))
}

// SharesForSpend returns the most shares of outcome i that spend buys,
// rounded down: the exact Δ solving C(q + Δ·e_i) − C(q) = spend is
// b·ln(1 + (e^{spend/b} − 1)/p_i). BuyCost of the result is at most spend.
// Errors: EINVALID (outcome, amount), ECONFLICT (past MaxShares).
func (s *State) SharesForSpend(i int, spend levee.Micros) (levee.Micros, error) {
	if i < 0 || i >= len(s.q) {
		return 0, levee.Invalid("outcome", "outcome must be from 0 to %d", len(s.q)-1)
	}
	if spend < 0 || spend > MaxShares {
		return 0, levee.Invalid("amount", "amount must be from 0 to %s", MaxShares)
	}
	v := s.side(i)
	return s.sharesForSpend(&v, i, int64(spend))
}

// SharesToPrice returns how many shares of outcome i to buy (side Buy) until
// its price rises to limit, or to sell (side Sell) until it falls to limit,
// rounded down so the price never passes the limit: b·(logit limit − logit
// p_i) for a buy. limit is a price in micro-units, strictly between 0 and 1.
// The result is 0 or negative when the price is already at or past the limit.
// Errors: EINVALID (outcome, side, limit_price).
func (s *State) SharesToPrice(i int, sd Side, limit levee.Micros) (levee.Micros, error) {
	if i < 0 || i >= len(s.q) {
		return 0, levee.Invalid("outcome", "outcome must be from 0 to %d", len(s.q)-1)
	}
	if sd != Buy && sd != Sell {
		return 0, levee.Invalid("side", "side must be buy or sell")
	}
	if limit <= 0 || limit >= levee.Scale {
		return 0, levee.Invalid("limit_price", "limit price must be above 0 and below 1")
	}
	v := s.side(i)
	return s.sharesToPrice(&v, i, sd == Buy, int64(limit)), nil
}

// Subsidy returns the most a market maker starting from s can lose, rounded
// up: max_i (C(q) − q_i) = b·ln(1/min_i p_i), b·ln n when prices are uniform.
// Traders hold q − q_start, and C(q_end) ≥ q_end,i, so whatever happens the
// payout on outcome i less the money collected is at most C(q_start) − q_start,i.
func (s *State) Subsidy() levee.Micros {
	m, lo := s.q[0], s.q[0]
	for _, v := range s.q[1:] {
		m, lo = max(m, v), min(lo, v)
	}
	bf := float64(s.b)
	var sum float64
	for _, v := range s.q {
		sum += math.Exp(float64(v-m) / bf)
	}
	// (m − min q) is exact; b·ln(sum), with sum in [1, n], is off by about n·ε·b.
	est := float64(m-lo) + bf*math.Log(sum)
	errBound := tolAbs*bf*(16+float64(len(s.q))) + tolAbs*est + absFloor
	return levee.Micros(roundUp(est, errBound, func(n int64) bool {
		terms := make([]expTerm, 0, len(s.q)+1)
		for _, v := range s.q {
			terms = append(terms, expTerm{1, int64(v)})
		}
		terms = append(terms, expTerm{-1, int64(lo) + n})
		sign, ok := expSumSign(terms, int64(s.b))
		return ok && sign <= 0
	}))
}

// initialQuantity returns b·ln(p/pmin) rounded down: the q of an outcome with
// probability p when the least likely outcome has q = 0.
func initialQuantity(b, p, pmin levee.Micros) levee.Micros {
	bf := float64(b)
	est := bf * math.Log(float64(p)/float64(pmin))
	return levee.Micros(roundDown(est, tolAbs*16*est+absFloor, func(n int64) bool {
		sign, ok := expSumSign([]expTerm{{int64(p), 0}, {-int64(pmin), n}}, int64(b))
		return ok && sign >= 0
	}))
}

// checkTrade refuses a trade of shares on outcome i that is malformed or
// would move q_i past ±MaxShares (dir is +1 for a buy, −1 for a sell).
func (s *State) checkTrade(i int, shares levee.Micros, dir levee.Micros) error {
	if i < 0 || i >= len(s.q) {
		return levee.Invalid("outcome", "outcome must be from 0 to %d", len(s.q)-1)
	}
	if shares < 0 || shares > MaxShares {
		return levee.Invalid("shares", "shares must be from 0 to %s", MaxShares)
	}
	if after := s.q[i] + dir*shares; after > MaxShares || after < -MaxShares {
		return errShareLimit
	}
	return nil
}

var errShareLimit = levee.Errorf(levee.ECONFLICT, "the order would take the outcome past the market's limit of %s shares", MaxShares)

// errInternal reports a float evaluation that left its range, which the
// limits on State should make impossible; it is an error, not a panic,
// because a market must never take the process down.
var errInternal = levee.Errorf(levee.EINTERNAL, "market maths out of range")

// finite reports whether a float estimate is usable: not NaN or ±Inf and
// small enough to convert to int64 micro-units.
func finite(x float64) bool { return x > -0x1p62 && x < 0x1p62 }

func (s *State) buyCost(v *side, i int, delta int64) (levee.Micros, error) {
	if delta == 0 {
		return 0, nil
	}
	est, e := v.buyCostEst(delta)
	if !finite(est) {
		return 0, errInternal
	}
	return levee.Micros(roundUp(est, e, func(n int64) bool { return s.costAtMost(i, delta, n) })), nil
}

func (s *State) sellProceeds(v *side, i int, delta int64) (levee.Micros, error) {
	if delta == 0 {
		return 0, nil
	}
	est, e := v.sellProceedsEst(delta)
	if !finite(est) {
		return 0, errInternal
	}
	return levee.Micros(roundDown(est, e, func(n int64) bool { return s.proceedsAtLeast(i, delta, n) })), nil
}

func (s *State) sharesForSpend(v *side, i int, spend int64) (levee.Micros, error) {
	if spend == 0 {
		return 0, nil
	}
	est, e := v.sharesForSpendEst(spend)
	room := float64(MaxShares - s.q[i])
	if !finite(est) || est-e > room {
		// Past the share limit, whatever the exact value.
		return 0, errShareLimit
	}
	n := levee.Micros(max(0, roundDown(est, e, func(n int64) bool { return n <= 0 || s.costAtMost(i, n, spend) })))
	if n > MaxShares || s.q[i]+n > MaxShares {
		return 0, errShareLimit
	}
	return n, nil
}

func (s *State) sharesToPrice(v *side, i int, buy bool, limit int64) levee.Micros {
	est, e := v.limitEst(limit, buy)
	return levee.Micros(roundDown(est, e, func(n int64) bool { return s.priceWithin(i, buy, n, limit) }))
}

// costAtMost reports exactly whether buying delta of outcome i costs at most
// n micro-units: Σ_j e^{q'_j/b} ≤ e^{n/b}·Σ_j e^{q_j/b}.
func (s *State) costAtMost(i int, delta, n int64) bool {
	terms := make([]expTerm, 0, 2*len(s.q))
	for j, v := range s.q {
		after := int64(v)
		if j == i {
			after += delta
		}
		terms = append(terms, expTerm{1, after}, expTerm{-1, int64(v) + n})
	}
	sign, ok := expSumSign(terms, int64(s.b))
	return ok && sign <= 0
}

// proceedsAtLeast reports exactly whether selling delta of outcome i pays at
// least n micro-units: Σ_j e^{q_j/b} ≥ e^{n/b}·Σ_j e^{q”_j/b}.
func (s *State) proceedsAtLeast(i int, delta, n int64) bool {
	terms := make([]expTerm, 0, 2*len(s.q))
	for j, v := range s.q {
		after := int64(v)
		if j == i {
			after -= delta
		}
		terms = append(terms, expTerm{1, int64(v)}, expTerm{-1, after + n})
	}
	sign, ok := expSumSign(terms, int64(s.b))
	return ok && sign >= 0
}

// priceWithin reports exactly whether, after buying (or selling) n shares of
// outcome i, its price is still at most (at least) limit/10^6:
// 10^6·e^{q_i/b} − limit·Σ_j e^{q_j/b} ≤ 0 for a buy, ≥ 0 for a sell.
func (s *State) priceWithin(i int, buy bool, n, limit int64) bool {
	if !buy {
		n = -n
	}
	terms := make([]expTerm, 0, len(s.q)+1)
	for j, v := range s.q {
		k := int64(v)
		if j == i {
			k += n
		}
		terms = append(terms, expTerm{-limit, k})
	}
	terms = append(terms, expTerm{levee.Scale, int64(s.q[i]) + n})
	sign, ok := expSumSign(terms, int64(s.b))
	if buy {
		return ok && sign <= 0
	}
	return ok && sign >= 0
}
