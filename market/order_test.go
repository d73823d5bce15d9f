package market

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"levee"
)

func TestOrderRefusals(t *testing.T) {
	m := levee.MustMicros
	for _, tc := range []struct {
		name     string
		o        Order
		position string
		cash     string
		code     string
		field    string
	}{
		{"outcome too large", Order{Outcome: 2, Side: Buy, Shares: m("1")}, "0", "100", levee.EINVALID, "outcome"},
		{"negative outcome", Order{Outcome: -1, Side: Buy, Shares: m("1")}, "0", "100", levee.EINVALID, "outcome"},
		{"no side", Order{Outcome: 0, Shares: m("1")}, "0", "100", levee.EINVALID, "side"},
		{"bad side", Order{Outcome: 0, Side: 3, Shares: m("1")}, "0", "100", levee.EINVALID, "side"},
		{"negative shares", Order{Outcome: 0, Side: Buy, Shares: -1}, "0", "100", levee.EINVALID, "shares"},
		{"too many shares", Order{Outcome: 0, Side: Buy, Shares: MaxShares + 1}, "0", "100", levee.EINVALID, "shares"},
		{"negative amount", Order{Outcome: 0, Side: Buy, Amount: -1}, "0", "100", levee.EINVALID, "amount"},
		{"huge amount", Order{Outcome: 0, Side: Buy, Amount: MaxShares + 1}, "0", "100", levee.EINVALID, "amount"},
		{"negative limit", Order{Outcome: 0, Side: Buy, Shares: m("1"), LimitPrice: -1}, "0", "100", levee.EINVALID, "limit_price"},
		{"limit of 1", Order{Outcome: 0, Side: Buy, LimitPrice: m("1")}, "0", "100", levee.EINVALID, "limit_price"},
		{"negative max_cost", Order{Outcome: 0, Side: Buy, Shares: m("1"), MaxCost: -1}, "0", "100", levee.EINVALID, "max_cost"},
		{"negative min_proceeds", Order{Outcome: 0, Side: Sell, Shares: m("1"), MinProceeds: -1}, "1", "0", levee.EINVALID, "min_proceeds"},
		{"nothing to trade", Order{Outcome: 0, Side: Buy}, "0", "100", levee.EINVALID, "shares"},
		{"shares and amount", Order{Outcome: 0, Side: Buy, Shares: m("1"), Amount: m("1")}, "0", "100", levee.EINVALID, "amount"},
		{"shares and all", Order{Outcome: 0, Side: Sell, Shares: m("1"), All: true}, "5", "0", levee.EINVALID, "all"},
		{"buy all", Order{Outcome: 0, Side: Buy, All: true}, "0", "100", levee.EINVALID, "all"},
		{"sell an amount", Order{Outcome: 0, Side: Sell, Amount: m("1")}, "5", "0", levee.EINVALID, "amount"},
		{"max_cost on a sell", Order{Outcome: 0, Side: Sell, All: true, MaxCost: m("1")}, "5", "0", levee.EINVALID, "max_cost"},
		{"min_proceeds on a buy", Order{Outcome: 0, Side: Buy, Shares: m("1"), MinProceeds: m("1")}, "0", "100", levee.EINVALID, "min_proceeds"},

		{"insufficient cash", Order{Outcome: 0, Side: Buy, Shares: m("10")}, "0", "5", levee.ECONFLICT, ""},
		{"max_cost exceeded", Order{Outcome: 0, Side: Buy, Shares: m("10"), MaxCost: m("5")}, "0", "100", levee.ECONFLICT, ""},
		{"buy limit below the price", Order{Outcome: 0, Side: Buy, LimitPrice: m("0.4")}, "0", "100", levee.ECONFLICT, ""},
		{"buy limit reached", Order{Outcome: 0, Side: Buy, Shares: m("1"), LimitPrice: m("0.5")}, "0", "100", levee.ECONFLICT, ""},
		{"sell limit reached", Order{Outcome: 0, Side: Sell, All: true, LimitPrice: m("0.5")}, "5", "0", levee.ECONFLICT, ""},
		{"no position", Order{Outcome: 0, Side: Sell, All: true}, "0", "0", levee.ECONFLICT, ""},
		{"short sale", Order{Outcome: 0, Side: Sell, Shares: m("5.000001")}, "5", "0", levee.ECONFLICT, ""},
		{"min_proceeds not met", Order{Outcome: 0, Side: Sell, Shares: m("5"), MinProceeds: m("2.5")}, "5", "0", levee.ECONFLICT, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := MustState(t, "100", "0", "0")
			_, err := s.Quote(tc.o, m(tc.position), m(tc.cash))
			if levee.ErrorCode(err) != tc.code || levee.ErrorField(err) != tc.field {
				t.Errorf("error %v: want code %s, field %q", err, tc.code, tc.field)
			}
			if !slices.Equal(s.Q(), micros("0", "0")) {
				t.Errorf("quote changed the state to %v", s.Q())
			}
		})
	}
}

func TestOrderSemantics(t *testing.T) {
	m := levee.MustMicros
	t.Run("buy shares", func(t *testing.T) {
		s := MustState(t, "100", "0", "0")
		f := mustQuote(t, s, Order{Outcome: 1, Side: Buy, Shares: m("10")}, 0, m("100"))
		want, _ := s.BuyCost(1, m("10"))
		if f.Shares != m("10") || f.Cost != want || f.Proceeds != 0 || f.Side != Buy || f.Outcome != 1 {
			t.Errorf("fill %+v, want 10 shares for %s", f, want)
		}
	})
	t.Run("cash exactly enough", func(t *testing.T) {
		s := MustState(t, "100", "0", "0")
		cost, _ := s.BuyCost(0, m("10"))
		mustQuote(t, s, Order{Outcome: 0, Side: Buy, Shares: m("10")}, 0, cost)
		if _, err := s.Quote(Order{Outcome: 0, Side: Buy, Shares: m("10")}, 0, cost-1); levee.ErrorCode(err) != levee.ECONFLICT {
			t.Errorf("one micro-unit short: %v", err)
		}
	})
	t.Run("buy amount buys the most it can", func(t *testing.T) {
		s := MustState(t, "250", "13", "-40", "7")
		f := mustQuote(t, s, Order{Outcome: 1, Side: Buy, Amount: m("77.7")}, 0, m("100"))
		more, _ := s.BuyCost(1, f.Shares+1)
		if f.Cost > m("77.7") || more <= m("77.7") {
			t.Errorf("%s shares cost %s, one more micro-share %s: want the most that 77.7 buys", f.Shares, f.Cost, more)
		}
	})
	t.Run("buy up to a limit price", func(t *testing.T) {
		s := MustState(t, "100", "0", "0")
		f := mustQuote(t, s, Order{Outcome: 0, Side: Buy, LimitPrice: m("0.75")}, 0, m("1000"))
		// b·(logit 0.75 − logit 0.5) = 100·ln 3 = 109.8612288…
		if f.Shares != m("109.861228") || f.PricesAfter[0] != m("0.75") {
			t.Errorf("fill %+v: want 109.861228 shares and a price of 0.75", f)
		}
		s.Apply(f)
		if p := s.Prices()[0]; p > 0.75 {
			t.Errorf("price %v passed the limit", p)
		}
	})
	t.Run("limit caps shares", func(t *testing.T) {
		s := MustState(t, "100", "0", "0")
		f := mustQuote(t, s, Order{Outcome: 0, Side: Buy, Shares: m("500"), LimitPrice: m("0.75")}, 0, m("1000"))
		if f.Shares != m("109.861228") {
			t.Errorf("filled %s, want the 109.861228 that reach the limit", f.Shares)
		}
		f = mustQuote(t, s, Order{Outcome: 0, Side: Buy, Shares: m("5"), LimitPrice: m("0.75")}, 0, m("1000"))
		if f.Shares != m("5") {
			t.Errorf("filled %s, want all 5 below the limit", f.Shares)
		}
	})
	t.Run("limit caps amount", func(t *testing.T) {
		s := MustState(t, "100", "0", "0")
		f := mustQuote(t, s, Order{Outcome: 0, Side: Buy, Amount: m("1000"), LimitPrice: m("0.75")}, 0, m("1000"))
		if f.Shares != m("109.861228") {
			t.Errorf("filled %s, want the 109.861228 that reach the limit", f.Shares)
		}
	})
	t.Run("sell all leaves no dust", func(t *testing.T) {
		s := MustState(t, "100", "33.333333", "0")
		f := mustQuote(t, s, Order{Outcome: 0, Side: Sell, All: true}, m("33.333333"), 0)
		if f.Shares != m("33.333333") || f.Cost != 0 || f.Side != Sell {
			t.Errorf("fill %+v, want all 33.333333", f)
		}
		s.Apply(f)
		if !slices.Equal(s.Q(), micros("0", "0")) {
			t.Errorf("q = %v, want back to 0", s.Q())
		}
	})
	t.Run("sell down to a limit", func(t *testing.T) {
		s := MustState(t, "100", "200", "0")
		f := mustQuote(t, s, Order{Outcome: 0, Side: Sell, LimitPrice: m("0.75")}, m("200"), 0)
		// q_0 falls to 100·ln 3 = 109.861228…, rounded so the price stays ≥ 0.75.
		if f.Shares != m("90.138771") {
			t.Errorf("sold %s, want 90.138771", f.Shares)
		}
		f = mustQuote(t, s, Order{Outcome: 0, Side: Sell, LimitPrice: m("0.75")}, m("50"), 0)
		if f.Shares != m("50") {
			t.Errorf("sold %s, want the whole position of 50", f.Shares)
		}
	})
	t.Run("guards pass at the boundary", func(t *testing.T) {
		s := MustState(t, "100", "0", "0")
		cost, _ := s.BuyCost(0, m("10"))
		mustQuote(t, s, Order{Outcome: 0, Side: Buy, Shares: m("10"), MaxCost: cost}, 0, m("100"))
		pay, _ := s.SellProceeds(0, m("10"))
		mustQuote(t, s, Order{Outcome: 0, Side: Sell, Shares: m("10"), MinProceeds: pay}, m("10"), 0)
	})
	t.Run("evaluate leaves prices to the caller", func(t *testing.T) {
		s := MustState(t, "100", "0", "0")
		f, err := s.Evaluate(Order{Outcome: 0, Side: Buy, Shares: m("10")}, 0, m("100"))
		if err != nil || f.PricesAfter != nil {
			t.Fatalf("Evaluate = %+v, %v", f, err)
		}
		if got := s.PricesAfter(f, nil); len(got) != 2 || got[0] <= m("0.5") {
			t.Errorf("PricesAfter = %v", got)
		}
	})
}

func mustQuote(t *testing.T, s *State, o Order, position, cash levee.Micros) Fill {
	t.Helper()
	f, err := s.Quote(o, position, cash)
	if err != nil {
		t.Fatalf("Quote(%+v): %v", o, err)
	}
	return f
}

// TestEvaluateDoesNotAllocate guards the engine's hot path.
func TestEvaluateDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	s := MustState(t, "100", "12.5", "-3")
	buf := make([]levee.Micros, 0, 2)
	for _, o := range []Order{
		{Outcome: 0, Side: Buy, Shares: levee.MustMicros("3.7")},
		{Outcome: 1, Side: Buy, Amount: levee.MustMicros("3.7")},
		{Outcome: 1, Side: Sell, All: true},
	} {
		allocs := testing.AllocsPerRun(100, func() {
			f, err := s.Evaluate(o, levee.MustMicros("5"), levee.MustMicros("100"))
			if err != nil {
				t.Fatal(err)
			}
			buf = s.PricesAfter(f, buf[:0])
		})
		if allocs != 0 {
			t.Errorf("%+v: %v allocations", o, allocs)
		}
	}
}

// FuzzQuote feeds arbitrary states and orders to Quote: it must never panic,
// never answer an internal error, and every fill must respect the order, the
// trader's cash and position and the house-favouring rounding.
func FuzzQuote(f *testing.F) {
	f.Add(int64(100_000_000), uint8(2), int64(0), int64(0), uint64(1), 0, uint8(1), int64(10_000_000), int64(0), false, int64(0), int64(0), int64(0), int64(0), int64(1_000_000_000))
	f.Add(int64(1_000_000), uint8(3), int64(1_000_000_000), int64(0), uint64(2), 0, uint8(2), int64(0), int64(0), true, int64(0), int64(0), int64(0), int64(5_000_000), int64(0))
	f.Add(int64(14_426_950), uint8(2), int64(0), int64(0), uint64(3), 1, uint8(1), int64(0), int64(10_000_000), false, int64(750_000), int64(0), int64(0), int64(0), int64(100_000_000))
	f.Add(int64(10_000_000_000_000), uint8(100), int64(-1_000_000_000_000_000), int64(1_000_000_000_000_000), uint64(4), 99, uint8(2), int64(1), int64(0), false, int64(1), int64(0), int64(1), int64(1), int64(0))
	f.Fuzz(func(t *testing.T, b int64, n uint8, q0, q1 int64, seed uint64, outcome int, sd uint8,
		shares, amount int64, all bool, limit, maxCost, minProceeds, position, cash int64) {
		q := []levee.Micros{levee.Micros(q0), levee.Micros(q1)}
		rng := rand.New(rand.NewPCG(seed, 0))
		for len(q) < int(n) {
			q = append(q, levee.Micros(rng.Int64N(2*int64(MaxShares)+1)-int64(MaxShares)))
		}
		s, err := NewState(levee.Micros(b), q)
		if err != nil {
			if levee.ErrorCode(err) != levee.EINVALID {
				t.Fatalf("NewState: %v", err)
			}
			return
		}
		o := Order{Outcome: outcome, Side: Side(sd), Shares: levee.Micros(shares), Amount: levee.Micros(amount), All: all,
			LimitPrice: levee.Micros(limit), MaxCost: levee.Micros(maxCost), MinProceeds: levee.Micros(minProceeds)}
		fill, err := s.Quote(o, levee.Micros(position), levee.Micros(cash))
		if err != nil {
			if c := levee.ErrorCode(err); c != levee.EINVALID && c != levee.ECONFLICT {
				t.Fatalf("Quote(%+v): %v", o, err)
			}
			return
		}
		if fill.Shares <= 0 || fill.Shares > MaxShares || fill.Outcome != outcome || fill.Side != o.Side {
			t.Fatalf("Quote(%+v) = %+v", o, fill)
		}
		if fill.Side == Buy {
			if fill.Cost <= 0 || fill.Cost > fill.Shares || fill.Cost > levee.Micros(cash) ||
				(o.MaxCost > 0 && fill.Cost > o.MaxCost) || (o.Amount > 0 && fill.Cost > o.Amount) ||
				(o.Shares > 0 && fill.Shares > o.Shares) {
				t.Fatalf("Quote(%+v) = %+v", o, fill)
			}
		} else {
			if fill.Proceeds < 0 || fill.Proceeds >= fill.Shares || fill.Shares > levee.Micros(position) ||
				fill.Proceeds < o.MinProceeds || (o.Shares > 0 && fill.Shares > o.Shares) {
				t.Fatalf("Quote(%+v) = %+v", o, fill)
			}
		}
		var sum levee.Micros
		for _, p := range fill.PricesAfter {
			if p < 0 || p > levee.Scale {
				t.Fatalf("prices after %v", fill.PricesAfter)
			}
			sum += p
		}
		if sum != levee.Scale {
			t.Fatalf("prices after %v sum to %s", fill.PricesAfter, sum)
		}
		for _, p := range s.Prices() {
			if math.IsNaN(p) {
				t.Fatalf("NaN price on %v", s.q)
			}
		}
	})
}
