package market

import (
	"levee"
)

// Side says whether an order buys or sells. The zero Side is invalid, so an
// order whose side was never set is refused rather than taken as a buy.
type Side int

// The two sides of an order.
const (
	Buy  Side = 1
	Sell Side = 2
)

// String returns "buy" or "sell".
func (sd Side) String() string {
	switch sd {
	case Buy:
		return "buy"
	case Sell:
		return "sell"
	}
	return "invalid"
}

// Order is a request to trade one outcome with the market maker. Exactly one
// of Shares, Amount and All says how much, except that LimitPrice may also
// stand alone:
//
//   - Buy Shares: buy exactly that many shares.
//   - Buy Amount: spend at most Amount; buys the most shares it pays for
//     (rounded down), so the cost is at most Amount and usually a few
//     micro-units under it.
//   - Sell Shares: sell exactly that many; at most the position (no short
//     selling).
//   - Sell All: sell the whole position, exactly, leaving no dust.
//   - LimitPrice (a price in micro-units: 0.75 is 750000) caps any of these:
//     a buy stops when the price of the outcome would pass the limit, a sell
//     when it would fall below it, and the order fills partially. Alone, a
//     buy buys until the price reaches the limit and a sell sells (up to the
//     whole position) until it falls to it. A limit already reached is
//     refused rather than filled with nothing.
//
// MaxCost and MinProceeds are guards, not caps: a buy that would cost more
// than MaxCost, or a sell that would pay less than MinProceeds, is refused
// whole. Zero means unset for LimitPrice, MaxCost and MinProceeds.
type Order struct {
	Outcome     int
	Side        Side
	Shares      levee.Micros
	Amount      levee.Micros
	All         bool
	LimitPrice  levee.Micros
	MaxCost     levee.Micros
	MinProceeds levee.Micros
}

// Fill is the outcome of an order evaluated against a state: the shares that
// change hands and the money, rounded in the house's favour. Cost is set for
// a buy, Proceeds for a sell.
type Fill struct {
	Outcome  int
	Side     Side
	Shares   levee.Micros
	Cost     levee.Micros
	Proceeds levee.Micros
	// PricesAfter are the prices once the fill is applied, rounded to
	// micro-units so that they sum to exactly 1.000000 (see RoundPrices).
	// Quote sets them; Evaluate leaves them nil so the engine's hot path
	// does not allocate, and the engine reads the prices once after Apply.
	PricesAfter []levee.Micros
}

// Quote evaluates o against s for a trader who holds position shares of
// o.Outcome and has cash available, without changing s, and fills in the
// prices after the fill. It is Evaluate plus PricesAfter.
// Errors: as Evaluate.
func (s *State) Quote(o Order, position, cash levee.Micros) (Fill, error) {
	f, err := s.Evaluate(o, position, cash)
	if err != nil {
		return f, err
	}
	f.PricesAfter = s.PricesAfter(f, nil)
	return f, nil
}

// Evaluate is Quote without PricesAfter: it does not allocate. See Order for
// the semantics.
// Errors: EINVALID with the field "outcome", "side", "shares", "amount",
// "all", "limit_price", "max_cost" or "min_proceeds" for a malformed order;
// ECONFLICT when the state of the market or the trader forbids it: insufficient
// cash, no position or more shares than the position, a guard (max_cost,
// min_proceeds) violated, a limit price already reached, an amount too small
// to buy anything, or the market's share limit.
func (s *State) Evaluate(o Order, position, cash levee.Micros) (Fill, error) {
	if err := s.check(o); err != nil {
		return Fill{}, err
	}
	v := s.side(o.Outcome)
	if o.Side == Buy {
		return s.evalBuy(&v, o, cash)
	}
	return s.evalSell(&v, o, position)
}

func (s *State) evalBuy(v *side, o Order, cash levee.Micros) (Fill, error) {
	i := o.Outcome
	delta := levee.Micros(-1) // none yet: a limit price alone
	switch {
	case o.Shares > 0:
		delta = o.Shares
	case o.Amount > 0:
		n, err := s.sharesForSpend(v, i, int64(o.Amount))
		if err != nil {
			return Fill{}, err
		}
		if n == 0 { // cannot happen: a price below 1 buys at least a share per unit spent
			return Fill{}, levee.Errorf(levee.ECONFLICT, "an amount of %s buys no shares", o.Amount)
		}
		delta = n
	}
	if o.LimitPrice > 0 {
		n := s.sharesToPrice(v, i, true, int64(o.LimitPrice))
		if n <= 0 {
			return Fill{}, levee.Errorf(levee.ECONFLICT, "the price of outcome %d is already at or above the limit price %s", i, o.LimitPrice)
		}
		if delta < 0 || n < delta {
			delta = n
		}
	}
	if s.q[i]+delta > MaxShares {
		return Fill{}, errShareLimit
	}
	cost, err := s.buyCost(v, i, int64(delta))
	if err != nil {
		return Fill{}, err
	}
	switch {
	case o.Amount > 0 && cost > o.Amount:
		// Impossible when both roundings are exact; refuse rather than overcharge.
		return Fill{}, errInternal
	case o.MaxCost > 0 && cost > o.MaxCost:
		return Fill{}, levee.Errorf(levee.ECONFLICT, "the order would cost %s, above max_cost %s", cost, o.MaxCost)
	case cost > cash:
		return Fill{}, levee.Errorf(levee.ECONFLICT, "insufficient cash: the order costs %s and %s is available", cost, max(cash, 0))
	}
	return Fill{Outcome: i, Side: Buy, Shares: delta, Cost: cost}, nil
}

func (s *State) evalSell(v *side, o Order, position levee.Micros) (Fill, error) {
	i := o.Outcome
	if position <= 0 {
		return Fill{}, levee.Errorf(levee.ECONFLICT, "no shares of outcome %d to sell", i)
	}
	delta := position // All, or a limit price alone
	if o.Shares > 0 {
		if o.Shares > position {
			return Fill{}, levee.Errorf(levee.ECONFLICT, "cannot sell %s shares of outcome %d: the position is %s (no short selling)", o.Shares, i, position)
		}
		delta = o.Shares
	}
	if o.LimitPrice > 0 {
		n := s.sharesToPrice(v, i, false, int64(o.LimitPrice))
		if n <= 0 {
			return Fill{}, levee.Errorf(levee.ECONFLICT, "the price of outcome %d is already at or below the limit price %s", i, o.LimitPrice)
		}
		delta = min(delta, n)
	}
	if s.q[i]-delta < -MaxShares {
		return Fill{}, errShareLimit
	}
	proceeds, err := s.sellProceeds(v, i, int64(delta))
	if err != nil {
		return Fill{}, err
	}
	if o.MinProceeds > 0 && proceeds < o.MinProceeds {
		return Fill{}, levee.Errorf(levee.ECONFLICT, "the order would pay %s, below min_proceeds %s", proceeds, o.MinProceeds)
	}
	return Fill{Outcome: i, Side: Sell, Shares: delta, Proceeds: proceeds}, nil
}

// check refuses a malformed order, naming the first offending field.
func (s *State) check(o Order) error {
	switch {
	case o.Outcome < 0 || o.Outcome >= len(s.q):
		return levee.Invalid("outcome", "outcome must be from 0 to %d", len(s.q)-1)
	case o.Side != Buy && o.Side != Sell:
		return levee.Invalid("side", "side must be buy or sell")
	case o.Shares < 0 || o.Shares > MaxShares:
		return levee.Invalid("shares", "shares must be from 0 to %s", MaxShares)
	case o.Amount < 0 || o.Amount > MaxShares:
		return levee.Invalid("amount", "amount must be from 0 to %s", MaxShares)
	case o.LimitPrice < 0 || o.LimitPrice >= levee.Scale:
		return levee.Invalid("limit_price", "limit price must be above 0 and below 1")
	case o.MaxCost < 0:
		return levee.Invalid("max_cost", "max_cost must not be negative")
	case o.MinProceeds < 0:
		return levee.Invalid("min_proceeds", "min_proceeds must not be negative")
	case o.Side == Buy && o.All:
		return levee.Invalid("all", "all applies to sells only")
	case o.Side == Buy && o.MinProceeds > 0:
		return levee.Invalid("min_proceeds", "min_proceeds applies to sells only")
	case o.Side == Sell && o.Amount > 0:
		return levee.Invalid("amount", "amount applies to buys only; sell shares or all")
	case o.Side == Sell && o.MaxCost > 0:
		return levee.Invalid("max_cost", "max_cost applies to buys only")
	case o.Shares > 0 && o.Amount > 0:
		return levee.Invalid("amount", "give only one of shares, amount or all")
	case o.Shares > 0 && o.All:
		return levee.Invalid("all", "give only one of shares, amount or all")
	case o.Shares == 0 && o.Amount == 0 && !o.All && o.LimitPrice == 0:
		return levee.Invalid("shares", "give shares, amount, all or limit_price")
	}
	return nil
}

// PricesAfter appends to dst the rounded prices (see RoundPrices) that s will
// have once f is applied, without changing s.
func (s *State) PricesAfter(f Fill, dst []levee.Micros) []levee.Micros {
	var buf [MaxOutcomes]float64
	p := buf[:len(s.q)]
	pricesInto(p, s.b, s.q, f.Outcome, f.signedShares())
	return RoundPrices(dst, p)
}

// Apply changes s by f, which must come from Quote or Evaluate on this same
// state: it trusts f and does not check it again.
func (s *State) Apply(f Fill) {
	s.q[f.Outcome] += f.signedShares()
}

func (f Fill) signedShares() levee.Micros {
	if f.Side == Sell {
		return -f.Shares
	}
	return f.Shares
}
