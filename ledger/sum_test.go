package ledger_test

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"levee"
	"levee/ledger"
)

// TestSumIsExact checks Sum against math/big on random int64 amounts, many
// of them at the extremes, where an int64 sum wraps.
func TestSumIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 200 {
		var s ledger.Sum
		want := new(big.Int)
		for range r.IntN(50) {
			var m int64
			switch r.IntN(4) {
			case 0:
				m = math.MaxInt64 - r.Int64N(3)
			case 1:
				m = math.MinInt64 + r.Int64N(3)
			case 2:
				m = int64(levee.MaxMoney) * (1 - 2*r.Int64N(2))
			default:
				m = r.Int64() - r.Int64()
			}
			s = s.Add(levee.Micros(m))
			want.Add(want, big.NewInt(m))
		}
		if s.Big().Cmp(want) != 0 {
			t.Fatalf("sum %s, want %s", s.Big(), want)
		}
		if m, ok := s.Micros(); ok != want.IsInt64() || ok && int64(m) != want.Int64() {
			t.Fatalf("Micros() = %d, %v for %s", m, ok, want)
		}
	}
	for _, tt := range []struct {
		add  []levee.Micros
		want string
	}{
		{nil, "0.000000"},
		{[]levee.Micros{-1}, "-0.000001"},
		{[]levee.Micros{math.MaxInt64, 1}, "9223372036854.775808"},
		{[]levee.Micros{math.MinInt64, -1}, "-9223372036854.775809"},
		{[]levee.Micros{levee.MaxMoney, levee.MaxMoney, levee.MaxMoney, levee.MaxMoney, levee.MaxMoney, levee.MaxMoney, levee.MaxMoney, levee.MaxMoney, levee.MaxMoney, levee.MaxMoney}, "10000000000000.000000"},
	} {
		var s ledger.Sum
		for _, m := range tt.add {
			s = s.Add(m)
		}
		if s.String() != tt.want {
			t.Errorf("%v: %s, want %s", tt.add, s, tt.want)
		}
	}
}
