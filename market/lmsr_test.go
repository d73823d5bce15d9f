package market

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"levee"
)

// MustState returns the state with liquidity b and quantities q, written as
// decimal strings.
func MustState(t testing.TB, b string, q ...string) *State {
	t.Helper()
	qs := make([]levee.Micros, len(q))
	for i, v := range q {
		qs[i] = levee.MustMicros(v)
	}
	s, err := NewState(levee.MustMicros(b), qs)
	if err != nil {
		t.Fatalf("NewState(%s, %v): %v", b, q, err)
	}
	return s
}

// MustMarket opens a market with liquidity b and the given initial
// probabilities (uniform over n outcomes when none are given).
func MustMarket(t testing.TB, b string, n int, probs ...string) (*State, levee.Micros) {
	t.Helper()
	var ps []levee.Micros
	for _, p := range probs {
		ps = append(ps, levee.MustMicros(p))
	}
	s, subsidy, err := NewMarket(levee.MustMicros(b), n, ps)
	if err != nil {
		t.Fatalf("NewMarket(%s, %d, %v): %v", b, n, probs, err)
	}
	return s, subsidy
}

func micros(vs ...string) []levee.Micros {
	out := make([]levee.Micros, len(vs))
	for i, v := range vs {
		out[i] = levee.MustMicros(v)
	}
	return out
}

// TestWorkedExamples checks values worked out by hand (and to 60 digits with
// Python's decimal module), to the micro-unit.
func TestWorkedExamples(t *testing.T) {
	t.Run("spend 10 at b=10/ln2 from 50/50", func(t *testing.T) {
		// b = 10/ln 2 = 14.42695040888… is stored as 14.426950. Spending 10
		// buys b·ln(2e^{10/b} − 1) = 15.8496249358… shares, rounded down to
		// 15.849624; those cost 9.9999992980…, rounded up to 10.000000, and
		// move the price to 0.7499999927…: 0.750000 to six places.
		s, subsidy := MustMarket(t, "14.426950", 2)
		if want := levee.MustMicros("10.000000"); subsidy != want { // b·ln 2 = 9.99999971…
			t.Errorf("subsidy = %s, want %s", subsidy, want)
		}
		f, err := s.Quote(Order{Outcome: 0, Side: Buy, Amount: levee.MustMicros("10")}, 0, levee.MustMicros("100"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Shares != levee.MustMicros("15.849624") || f.Cost != levee.MustMicros("10.000000") {
			t.Errorf("fill = %s shares for %s, want 15.849624 for 10.000000", f.Shares, f.Cost)
		}
		if want := micros("0.750000", "0.250000"); !slices.Equal(f.PricesAfter, want) {
			t.Errorf("prices after = %v, want %v", f.PricesAfter, want)
		}
		s.Apply(f)
		if p := s.Prices()[0]; math.Abs(p-0.75) > 1e-6/2 {
			t.Errorf("price after = %.9f, want 0.750000 to six places", p)
		}
	})
	t.Run("uniform subsidy is b ln n", func(t *testing.T) {
		for _, tc := range []struct {
			b    string
			n    int
			want string
		}{
			{"100", 2, "69.314719"},           // 69.3147180559…
			{"100", 3, "109.861229"},          // 109.8612288668…
			{"50", 100, "230.258510"},         // 230.2585092994…
			{"1", 2, "0.693148"},              // 0.6931471805…
			{"10000000", 2, "6931471.805600"}, // 6931471.80559945…
		} {
			_, got := MustMarket(t, tc.b, tc.n)
			if got != levee.MustMicros(tc.want) {
				t.Errorf("b=%s n=%d: subsidy %s, want %s", tc.b, tc.n, got, tc.want)
			}
		}
	})
	t.Run("three outcomes", func(t *testing.T) {
		// Buying 50 of outcome 0 at b = 100 costs 100·ln((e^{0.5} + 2)/3) =
		// 19.57644807495…; prices move to (0.45186276…, 0.27406862…,
		// 0.27406862…), which round down to a total of 0.999998, and the two
		// micro-units go to the largest remainders.
		s, _ := MustMarket(t, "100", 3)
		f, err := s.Quote(Order{Outcome: 0, Side: Buy, Shares: levee.MustMicros("50")}, 0, levee.MustMicros("1000"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Cost != levee.MustMicros("19.576449") {
			t.Errorf("cost = %s, want 19.576449", f.Cost)
		}
		if want := micros("0.451863", "0.274069", "0.274068"); !slices.Equal(f.PricesAfter, want) {
			t.Errorf("prices after = %v, want %v", f.PricesAfter, want)
		}
		s.Apply(f)
		back, err := s.Quote(Order{Outcome: 0, Side: Sell, All: true}, f.Shares, 0)
		if err != nil {
			t.Fatal(err)
		}
		if back.Proceeds != levee.MustMicros("19.576448") {
			t.Errorf("selling back pays %s, want 19.576448 (the house keeps the rounding)", back.Proceeds)
		}
	})
	t.Run("initial probabilities", func(t *testing.T) {
		// q_1 = 100·ln 3 = 109.8612288…, stored rounded down; the subsidy is
		// that of the stored state: 100·ln(1 + e^{1.09861228}) = 138.62943546…
		s, subsidy := MustMarket(t, "100", 2, "0.25", "0.75")
		if want := micros("0", "109.861228"); !slices.Equal(s.Q(), want) {
			t.Errorf("q = %v, want %v", s.Q(), want)
		}
		if subsidy != levee.MustMicros("138.629436") {
			t.Errorf("subsidy = %s, want 138.629436", subsidy)
		}
		if want := micros("0.250000", "0.750000"); !slices.Equal(s.PricesMicros(), want) {
			t.Errorf("prices = %v, want %v", s.PricesMicros(), want)
		}
	})
}

// TestExactRounding covers values that float64 cannot round: exact ties and
// values a hair away from a micro boundary.
func TestExactRounding(t *testing.T) {
	for _, tc := range []struct {
		name  string
		s     *State
		do    func(s *State) (levee.Micros, error)
		want  string
		about string
	}{
		{
			// C(14, 7) − C(0, 7) = 7 + 3·ln(e^{7/3} + 1) − 3·ln(1 + e^{7/3}) = 7 exactly.
			name: "exact tie, buy", s: MustState(t, "3", "0", "7"),
			do:   func(s *State) (levee.Micros, error) { return s.BuyCost(0, levee.MustMicros("14")) },
			want: "7",
		},
		{
			name: "exact tie, sell", s: MustState(t, "3", "14", "7"),
			do:   func(s *State) (levee.Micros, error) { return s.SellProceeds(0, levee.MustMicros("14")) },
			want: "7",
		},
		{
			name: "exact tie, spend", s: MustState(t, "3", "0", "7"),
			do:   func(s *State) (levee.Micros, error) { return s.SharesForSpend(0, levee.MustMicros("7")) },
			want: "14",
		},
		{
			// p_0 = 1 − e^{−1000}: one share costs 1 − (tiny), which rounds up to 1 …
			name: "price near 1, buy", s: MustState(t, "1", "1000", "0"),
			do:   func(s *State) (levee.Micros, error) { return s.BuyCost(0, levee.MustMicros("1")) },
			want: "1",
		},
		{
			// … and pays 1 − (tiny) when sold, which rounds down.
			name: "price near 1, sell", s: MustState(t, "1", "1000", "0"),
			do:   func(s *State) (levee.Micros, error) { return s.SellProceeds(0, levee.MustMicros("1")) },
			want: "0.999999",
		},
		{
			name: "price near 0, buy", s: MustState(t, "1", "1000", "0"),
			do:   func(s *State) (levee.Micros, error) { return s.BuyCost(1, 1) },
			want: "0.000001",
		},
		{
			name: "price near 0, sell", s: MustState(t, "1", "1000", "0"),
			do:   func(s *State) (levee.Micros, error) { return s.SellProceeds(1, levee.MustMicros("5")) },
			want: "0",
		},
		{
			// Spending 1 at p_0 ≈ 1 buys 1 + (tiny) shares: exactly 1.000000.
			name: "price near 1, spend", s: MustState(t, "1", "1000", "0"),
			do:   func(s *State) (levee.Micros, error) { return s.SharesForSpend(0, levee.MustMicros("1")) },
			want: "1",
		},
		{
			name: "extreme state, buy the favourite", s: MustState(t, "1", "999999999", "-1000000000"),
			do:   func(s *State) (levee.Micros, error) { return s.BuyCost(0, levee.MustMicros("1")) },
			want: "1",
		},
		{
			name: "extreme state, sell the favourite", s: MustState(t, "1", "1000000000", "-1000000000"),
			do:   func(s *State) (levee.Micros, error) { return s.SellProceeds(0, levee.MustMicros("123.456789")) },
			want: "123.456788",
		},
		{
			name: "extreme state, buy the outsider", s: MustState(t, "1", "1000000000", "-1000000000"),
			do:   func(s *State) (levee.Micros, error) { return s.BuyCost(1, levee.MustMicros("1000")) },
			want: "0.000001",
		},
		{
			// b·(logit 0.5 − logit p) with p = 1/(1+e^{-1000}): exactly 1000 − (tiny).
			name: "limit from a price near 1", s: MustState(t, "1", "0", "1000"),
			do:   func(s *State) (levee.Micros, error) { return s.SharesToPrice(0, Buy, levee.MustMicros("0.5")) },
			want: "1000",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.do(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if got != levee.MustMicros(tc.want) {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRefusals checks that bad input is refused with the right error and
// field, never answered with a NaN-derived number.
func TestRefusals(t *testing.T) {
	s := MustState(t, "100", "0", "0")
	for _, tc := range []struct {
		name  string
		err   error
		is    error
		field string
	}{
		{"one outcome", second(NewMarket(levee.MustMicros("100"), 1, nil)), ErrTooFewOutcomes, "outcomes"},
		{"too many outcomes", second(NewMarket(levee.MustMicros("100"), MaxOutcomes+1, nil)), ErrTooManyOutcomes, "outcomes"},
		{"zero b", second(NewMarket(0, 2, nil)), ErrBadLiquidity, "liquidity"},
		{"negative b", second(NewMarket(-levee.Scale, 2, nil)), ErrBadLiquidity, "liquidity"},
		{"b below 1", second(NewMarket(levee.MustMicros("0.999999"), 2, nil)), ErrBadLiquidity, "liquidity"},
		{"b above 1e7", second(NewMarket(MaxLiquidity+1, 2, nil)), ErrBadLiquidity, "liquidity"},
		{"probabilities not summing to 1", second(NewMarket(levee.MustMicros("100"), 2, micros("0.5", "0.4"))), ErrBadProbabilities, "probabilities"},
		{"zero probability", second(NewMarket(levee.MustMicros("100"), 2, micros("0", "1"))), ErrBadProbabilities, "probabilities"},
		{"negative probability", second(NewMarket(levee.MustMicros("100"), 2, micros("-0.5", "1.5"))), ErrBadProbabilities, "probabilities"},
		{"wrong number of probabilities", second(NewMarket(levee.MustMicros("100"), 3, micros("0.5", "0.5"))), ErrBadProbabilities, "probabilities"},
		{"stored q too large", third(NewState(levee.MustMicros("100"), []levee.Micros{MaxShares + 1, 0})), ErrBadQuantity, "q"},
		{"stored q too small", third(NewState(levee.MustMicros("100"), []levee.Micros{0, -MaxShares - 1})), ErrBadQuantity, "q"},
		{"negative shares to buy", third(s.BuyCost(0, -1)), nil, "shares"},
		{"too many shares to buy", third(s.BuyCost(0, MaxShares+1)), nil, "shares"},
		{"negative shares to sell", third(s.SellProceeds(0, -1)), nil, "shares"},
		{"outcome out of range", third(s.BuyCost(2, 1)), nil, "outcome"},
		{"negative outcome", third(s.SellProceeds(-1, 1)), nil, "outcome"},
		{"negative spend", third(s.SharesForSpend(0, -1)), nil, "amount"},
		{"limit zero", third(s.SharesToPrice(0, Buy, 0)), nil, "limit_price"},
		{"limit one", third(s.SharesToPrice(0, Buy, levee.Scale)), nil, "limit_price"},
		{"no side", third(s.SharesToPrice(0, 0, 500000)), nil, "side"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(tc.err, tc.is) {
				t.Errorf("error %v is not %v", tc.err, tc.is)
			}
			if levee.ErrorCode(tc.err) != levee.EINVALID || levee.ErrorField(tc.err) != tc.field {
				t.Errorf("error %v: want code invalid, field %q", tc.err, tc.field)
			}
		})
	}
	t.Run("share limit", func(t *testing.T) {
		s := MustState(t, "100", "999999999", "0")
		_, err := s.BuyCost(0, levee.MustMicros("2"))
		if levee.ErrorCode(err) != levee.ECONFLICT {
			t.Errorf("buying past MaxShares: %v, want a conflict", err)
		}
		_, err = s.SharesForSpend(0, levee.MustMicros("5"))
		if levee.ErrorCode(err) != levee.ECONFLICT {
			t.Errorf("spending past MaxShares: %v, want a conflict", err)
		}
	})
}

func second[T any](_ T, _ levee.Micros, err error) error { return err }
func third[T any](_ T, err error) error                  { return err }

// TestEdgeCases runs the primitives where the float maths is most strained:
// many outcomes, the largest and smallest b, and the largest q.
func TestEdgeCases(t *testing.T) {
	t.Run("100 outcomes", func(t *testing.T) {
		s, _ := MustMarket(t, "1000", 100)
		f, err := s.Quote(Order{Outcome: 42, Side: Buy, Amount: levee.MustMicros("500")}, 0, levee.MustMicros("1000"))
		if err != nil {
			t.Fatal(err)
		}
		if f.Cost > levee.MustMicros("500") || f.Cost < levee.MustMicros("499.999") {
			t.Errorf("cost %s for an amount of 500", f.Cost)
		}
		checkPrices(t, s, f)
	})
	for _, tc := range []struct {
		name string
		s    *State
	}{
		{"tiny b", MustState(t, "1", "0", "3", "-2")},
		{"huge b", MustState(t, "10000000", "12345678.9", "0")},
		{"huge q, small b", MustState(t, "1", "999999000", "999999010", "-999999000")},
		{"huge q, huge b", MustState(t, "10000000", "1000000000", "-1000000000")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.s.Outcomes() {
				for _, d := range micros("0.000001", "1", "1000", "1000000") {
					if tc.s.q[i]+d > MaxShares || tc.s.q[i]-d < -MaxShares {
						continue
					}
					cost, err := tc.s.BuyCost(i, d)
					if err != nil || cost <= 0 || cost > d {
						t.Errorf("BuyCost(%d, %s) = %s, %v: want in (0, %s]", i, d, cost, err, d)
					}
					pay, err := tc.s.SellProceeds(i, d)
					if err != nil || pay < 0 || pay >= d {
						t.Errorf("SellProceeds(%d, %s) = %s, %v: want in [0, %s)", i, d, pay, err, d)
					}
					n, err := tc.s.SharesForSpend(i, d)
					if err == nil && n < d {
						t.Errorf("SharesForSpend(%d, %s) = %s: spending buys at least as many shares", i, d, n)
					}
				}
			}
			p := tc.s.Prices()
			var sum float64
			for _, v := range p {
				if math.IsNaN(v) || v < 0 || v > 1 {
					t.Fatalf("prices %v", p)
				}
				sum += v
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Errorf("prices sum to %v", sum)
			}
		})
	}
}

// checkPrices checks that the rounded prices of a fill sum to exactly 1 and
// match the state's once the fill is applied (it applies it).
func checkPrices(t *testing.T, s *State, f Fill) {
	t.Helper()
	var sum levee.Micros
	for _, p := range f.PricesAfter {
		if p < 0 {
			t.Fatalf("negative price in %v", f.PricesAfter)
		}
		sum += p
	}
	if sum != levee.Scale {
		t.Fatalf("prices after %v sum to %s", f.PricesAfter, sum)
	}
	s.Apply(f)
	if got := s.PricesMicros(); !slices.Equal(got, f.PricesAfter) {
		t.Fatalf("prices after apply %v, quoted %v", got, f.PricesAfter)
	}
}

func TestRoundPrices(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []float64
		want []levee.Micros
	}{
		{"exact", []float64{0.25, 0.75}, micros("0.25", "0.75")},
		{"thirds", []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}, micros("0.333334", "0.333333", "0.333333")},
		{"largest remainder", []float64{0.4518627618776, 0.2740686190612, 0.2740686190612}, micros("0.451863", "0.274069", "0.274068")},
		{"a price too small to show", []float64{1e-9, 1 - 1e-9}, micros("0", "1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RoundPrices(nil, tc.p); !slices.Equal(got, tc.want) {
				t.Errorf("RoundPrices(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

// TestRandomTrading plays random order flow from several traders against
// random markets and checks the invariants of the market maker: prices sum to
// 1, the money collected is C(q_end) − C(q_start) rounded in the house's
// favour trade by trade (path independence), and whichever outcome wins the
// house never loses more than the subsidy, to the micro-unit.
func TestRandomTrading(t *testing.T) {
	r := newRef()
	rng := rand.New(rand.NewPCG(5, 6))
	markets, trades := 60, 300
	if testing.Short() || raceEnabled {
		markets = 15
	}
	for m := range markets {
		n := []int{2, 2, 3, 7, 100}[rng.IntN(5)]
		b := levee.Micros(math.Exp(rng.Float64()*math.Log(1e5))*levee.Scale) + MinLiquidity
		var probs []levee.Micros
		if rng.IntN(2) == 0 {
			probs = randProbs(rng, n)
		}
		s, subsidy, err := NewMarket(b, n, probs)
		if err != nil {
			t.Fatal(err)
		}
		start := s.Clone()
		const traders = 4
		pos := make([][]levee.Micros, traders)
		for k := range pos {
			pos[k] = make([]levee.Micros, n)
		}
		var collected levee.Micros // buys in less sells out
		var fills int64
		for range trades {
			k, i := rng.IntN(traders), rng.IntN(n)
			o := randOrder(rng, i, b)
			f, err := s.Quote(o, pos[k][i], levee.MaxMoney)
			if err != nil {
				if levee.ErrorCode(err) != levee.ECONFLICT {
					t.Fatalf("market %d: order %+v: %v", m, o, err)
				}
				continue
			}
			checkPrices(t, s, f) // applies f
			fills++
			if f.Side == Buy {
				pos[k][i] += f.Shares
				collected += f.Cost
			} else {
				pos[k][i] -= f.Shares
				collected -= f.Proceeds
			}
			if pos[k][i] < 0 {
				t.Fatalf("market %d: short position after %+v", m, f)
			}
			var sum float64
			for _, p := range s.Prices() {
				sum += p
			}
			if math.Abs(sum-1) > 1e-12 {
				t.Fatalf("market %d: prices sum to %v", m, sum)
			}
		}
		// Outstanding shares are exactly the traders' positions.
		for i := range n {
			var held levee.Micros
			for k := range pos {
				held += pos[k][i]
			}
			if s.q[i]-start.q[i] != held {
				t.Fatalf("market %d: q moved by %s on outcome %d, traders hold %s", m, s.q[i]-start.q[i], i, held)
			}
			if loss := held - collected; loss > subsidy {
				t.Fatalf("market %d: resolving to %d loses %s, above the subsidy %s", m, i, loss, subsidy)
			}
		}
		// Path independence: each trade rounded its exact ΔC in the house's
		// favour by less than a micro-unit.
		exact := r.f().Sub(r.state(s).cost(0, 0), r.state(start).cost(0, 0))
		slack := r.f().Sub(r.int(int64(collected)), exact)
		if slack.Sign() < 0 || slack.Cmp(r.int(fills)) >= 0 {
			t.Fatalf("market %d: collected %s for ΔC = %s over %d fills", m, collected, exact.Text('f', 3), fills)
		}
	}
}

// TestRoundTripNeverProfits buys and sells straight back, by shares and by
// amount, on random states: the trader can never come out ahead.
func TestRoundTripNeverProfits(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := 3000
	if testing.Short() || raceEnabled {
		cases = 500
	}
	for range cases {
		s, _ := randState(rng)
		i := rng.IntN(s.Outcomes())
		o := Order{Outcome: i, Side: Buy, Shares: min(randAmount(rng, s.b), MaxShares/2)}
		if rng.IntN(2) == 0 {
			o = Order{Outcome: i, Side: Buy, Amount: min(randAmount(rng, s.b), MaxShares/2)}
		}
		f, err := s.Quote(o, 0, levee.MaxMoney)
		if err != nil {
			if levee.ErrorCode(err) != levee.ECONFLICT {
				t.Fatalf("%+v: %v", o, err)
			}
			continue
		}
		s.Apply(f)
		back, err := s.Quote(Order{Outcome: i, Side: Sell, All: true}, f.Shares, 0)
		if err != nil {
			t.Fatalf("selling back %+v: %v", f, err)
		}
		if back.Shares != f.Shares || back.Proceeds > f.Cost {
			t.Fatalf("b=%s q=%v: bought %s for %s, sold %s for %s", s.b, s.q, f.Shares, f.Cost, back.Shares, back.Proceeds)
		}
	}
}

// randProbs returns n random probabilities in micro-units summing to 1.
func randProbs(rng *rand.Rand, n int) []levee.Micros {
	w := make([]float64, n)
	var sum float64
	for i := range w {
		w[i] = 0.01 + rng.Float64()
		sum += w[i]
	}
	ps := make([]levee.Micros, n)
	left := levee.Micros(levee.Scale)
	for i := range ps[:n-1] {
		ps[i] = max(1, levee.Micros(w[i]/sum*levee.Scale))
		left -= ps[i]
	}
	ps[n-1] = left
	return ps
}

// randOrder returns a random, valid order on outcome i of a market with
// liquidity b.
func randOrder(rng *rand.Rand, i int, b levee.Micros) Order {
	amount := func() levee.Micros {
		return levee.Micros(max(1, int64(math.Exp(rng.Float64()*math.Log(float64(b)*3)))))
	}
	limit := func() levee.Micros { return levee.Micros(1 + rng.IntN(levee.Scale-1)) }
	switch rng.IntN(7) {
	case 0:
		return Order{Outcome: i, Side: Buy, Shares: amount()}
	case 1:
		return Order{Outcome: i, Side: Buy, Amount: amount()}
	case 2:
		return Order{Outcome: i, Side: Buy, LimitPrice: limit(), Amount: amount()}
	case 3:
		return Order{Outcome: i, Side: Sell, Shares: amount()}
	case 4:
		return Order{Outcome: i, Side: Sell, All: true}
	case 5:
		return Order{Outcome: i, Side: Sell, LimitPrice: limit()}
	}
	return Order{Outcome: i, Side: Buy, Shares: amount(), LimitPrice: limit()}
}
