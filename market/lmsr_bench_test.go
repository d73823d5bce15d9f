package market

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"levee"
)

// benchState returns a market with n outcomes at uneven prices, so that the
// benchmarks do not run on the special case q = 0.
func benchState(b *testing.B, n int) *State {
	b.Helper()
	rng := rand.New(rand.NewPCG(9, 10))
	q := make([]levee.Micros, n)
	for i := range q {
		q[i] = levee.Micros(rng.Int64N(200 * levee.Scale))
	}
	s, err := NewState(levee.Units(100), q)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// benchSizes are order sizes that vary from one iteration to the next, so
// the benchmark does not always hit the same rounding path.
func benchSizes() []levee.Micros {
	rng := rand.New(rand.NewPCG(11, 12))
	sizes := make([]levee.Micros, 1024)
	for i := range sizes {
		sizes[i] = levee.Micros(1 + rng.Int64N(50*levee.Scale))
	}
	return sizes
}

// BenchmarkQuoteBuy quotes a buy of a number of shares, prices after included.
func BenchmarkQuoteBuy(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, sizes := benchState(b, n), benchSizes()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Quote(Order{Outcome: i % n, Side: Buy, Shares: sizes[i%len(sizes)]}, 0, levee.MaxMoney); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkQuoteBuyAmount quotes a buy for an amount of money: shares for
// the spend, then the cost of the rounded shares.
func BenchmarkQuoteBuyAmount(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, sizes := benchState(b, n), benchSizes()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Quote(Order{Outcome: i % n, Side: Buy, Amount: sizes[i%len(sizes)]}, 0, levee.MaxMoney); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEvaluateBuy is the engine's path: Evaluate, no prices, no
// allocation.
func BenchmarkEvaluateBuy(b *testing.B) {
	for _, n := range []int{2, 10, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, sizes := benchState(b, n), benchSizes()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := s.Evaluate(Order{Outcome: i % n, Side: Buy, Shares: sizes[i%len(sizes)]}, 0, levee.MaxMoney); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTradeBinary is one engine trade on a binary market: evaluate,
// apply, and the rounded prices for the broadcast. Buys and sells alternate
// so the state stays in range.
func BenchmarkTradeBinary(b *testing.B) {
	s, sizes := benchState(b, 2), benchSizes()
	prices := make([]levee.Micros, 0, 2)
	var pos levee.Micros
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		o := Order{Outcome: 0, Side: Buy, Shares: sizes[i%len(sizes)]}
		if i%2 == 1 {
			o = Order{Outcome: 0, Side: Sell, All: true}
		}
		f, err := s.Evaluate(o, pos, levee.MaxMoney)
		if err != nil {
			b.Fatal(err)
		}
		s.Apply(f)
		pos += f.signedShares()
		prices = s.AppendPricesMicros(prices[:0])
	}
}
