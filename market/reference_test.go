package market

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"levee"
)

// ref is a deliberately simple, slow reference for the LMSR quantities: the
// textbook formulas evaluated with math/big at refPrec bits, sharing no code
// with the package (its own exp and ln, no error bounds, no sign tests). The
// differential test holds the package to its correctly rounded results.
type ref struct {
	prec uint
	ln2  *big.Float
}

const refPrec = 320

func newRef() *ref {
	r := &ref{prec: refPrec}
	// ln 2 = Σ_{k≥1} 1/(k·2^k), to a few hundred bits more than needed so the
	// range reduction of exp keeps full precision for |x| up to 2^40.
	p := r.prec + 64
	sum := new(big.Float).SetPrec(p)
	for k := 1; k < int(p)+8; k++ {
		t := new(big.Float).SetPrec(p).SetInt64(1)
		t.SetMantExp(t, -k) // SetMantExp copies its argument's precision
		t.Quo(t, new(big.Float).SetPrec(p).SetInt64(int64(k)))
		sum.Add(sum, t)
	}
	r.ln2 = sum
	return r
}

func (r *ref) f() *big.Float { return new(big.Float).SetPrec(r.prec + 64) }

func (r *ref) int(v int64) *big.Float { return r.f().SetInt64(v) }

// exp returns e^x: x = k·ln2 + y, e^y by its Taylor series after 16 halvings.
func (r *ref) exp(x *big.Float) *big.Float {
	xf, _ := x.Float64()
	k := math.Round(xf / math.Ln2)
	y := r.f().Mul(r.int(int64(k)), r.ln2)
	y.Sub(x, y)
	y.SetMantExp(y, -16)
	sum, term := r.int(1), r.int(1)
	for i := int64(1); i < 400; i++ {
		term.Mul(term, y)
		term.Quo(term, r.int(i))
		sum.Add(sum, term)
		if term.Sign() == 0 || term.MantExp(nil) < -int(r.prec)-80 {
			break
		}
	}
	for range 16 {
		sum.Mul(sum, sum)
	}
	return sum.SetMantExp(sum, int(k))
}

// ln returns ln y for y > 0: y = m·2^e, ln m by Halley's iteration on exp.
func (r *ref) ln(y *big.Float) *big.Float {
	m := r.f()
	e := y.MantExp(m)
	mf, _ := m.Float64()
	z := r.f().SetFloat64(math.Log(mf))
	for range 3 { // cubic convergence: 53, 159, 477 bits
		ez := r.exp(z)
		num := r.f().Sub(m, ez)
		den := r.f().Add(m, ez)
		num.Quo(num, den)
		z.Add(z, num.Mul(num, r.int(2)))
	}
	return z.Add(z, r.f().Mul(r.int(int64(e)), r.ln2))
}

// refState is a state as the reference sees it: e_j = exp((q_j − top)/b)
// for the largest q top, computed once per state.
type refState struct {
	r   *ref
	b   int64
	q   []levee.Micros
	top int64
	e   []*big.Float
	sum *big.Float
}

func (r *ref) state(s *State) *refState {
	rs := &refState{r: r, b: int64(s.b), q: s.q, top: int64(s.q[0]), sum: r.f()}
	for _, v := range s.q {
		rs.top = max(rs.top, int64(v))
	}
	for _, v := range s.q {
		e := r.exp(rs.div(int64(v) - rs.top))
		rs.e = append(rs.e, e)
		rs.sum.Add(rs.sum, e)
	}
	return rs
}

// div returns x/b.
func (rs *refState) div(x int64) *big.Float {
	f := rs.r.int(x)
	return f.Quo(f, rs.r.int(rs.b))
}

// rest returns Σ_{j≠i} e_j, summed rather than subtracted from the total so
// that nothing cancels.
func (rs *refState) rest(i int) *big.Float {
	sum := rs.r.f()
	for j, e := range rs.e {
		if j != i {
			sum.Add(sum, e)
		}
	}
	return sum
}

// cost returns C(q + d·e_i) = b·ln Σ exp(q_j/b) in micro-units.
func (rs *refState) cost(i int, d levee.Micros) *big.Float {
	r := rs.r
	sum := rs.sum
	if d != 0 {
		sum = rs.rest(i)
		sum.Add(sum, r.exp(rs.div(int64(rs.q[i]+d)-rs.top)))
	}
	c := r.ln(sum)
	c.Mul(c, r.int(rs.b))
	return c.Add(c, r.int(rs.top))
}

// The quantities below come as n0 + rem with n0 an integer and rem computed
// to full relative precision, so that a value like d − e^{−1000} rounds the
// right way: written as one big number it would look like an integer at any
// affordable precision.

// prob returns p_i and 1 − p_i, the latter summed from the other outcomes so
// that it keeps its precision when p_i is close to 1.
func (rs *refState) prob(i int) (p, q *big.Float) {
	p = rs.r.f().Quo(rs.e[i], rs.sum)
	q = rs.r.f().Quo(rs.rest(i), rs.sum)
	return p, q
}

func (rs *refState) half(p *big.Float) bool { f, _ := p.Float64(); return f >= 0.5 }

// buyCost is b·ln(1 + p(e^x − 1)) = d + b·ln(1 − (1−p)(1 − e^{−x})).
func (rs *refState) buyCost(i int, d levee.Micros) (int64, *big.Float) {
	r := rs.r
	p, q := rs.prob(i)
	x := rs.div(int64(d))
	if rs.half(p) {
		t := r.expm1(x.Neg(x))
		t.Mul(t, q)
		return int64(d), r.f().Mul(r.log1p(t), r.int(rs.b))
	}
	t := r.expm1(x)
	return 0, r.f().Mul(r.log1p(t.Mul(t, p)), r.int(rs.b))
}

// sellProceeds is −b·ln(1 − p(1 − e^{−x})) = d − b·ln(1 + (1−p)(e^x − 1)).
func (rs *refState) sellProceeds(i int, d levee.Micros) (int64, *big.Float) {
	r := rs.r
	p, q := rs.prob(i)
	x := rs.div(int64(d))
	if rs.half(p) {
		t := r.expm1(x)
		t.Mul(t, q)
		return int64(d), r.f().Mul(r.log1p(t), r.int(-rs.b))
	}
	t := r.expm1(x.Neg(x))
	return 0, r.f().Mul(r.log1p(t.Mul(t, p)), r.int(-rs.b))
}

// sharesForSpend is b·ln(1 + (e^z − 1)/p) = s + b·ln(1 + (1 − e^{−z})(1−p)/p).
func (rs *refState) sharesForSpend(i int, s levee.Micros) (int64, *big.Float) {
	r := rs.r
	p, q := rs.prob(i)
	z := rs.div(int64(s))
	if rs.half(p) {
		t := r.expm1(z.Neg(z))
		t.Neg(t)
		t.Mul(t, q)
		t.Quo(t, p)
		return int64(s), r.f().Mul(r.log1p(t), r.int(rs.b))
	}
	t := r.expm1(z)
	return 0, r.f().Mul(r.log1p(t.Quo(t, p)), r.int(rs.b))
}

// sharesToPrice is b·(logit limit − logit p_i) for a buy, the negation for a
// sell, with logit p_i = (q_i − top)/b − ln Σ_{j≠i} e_j.
func (rs *refState) sharesToPrice(i int, buy bool, limit levee.Micros) (int64, *big.Float) {
	r := rs.r
	ll := r.ln(r.int(int64(limit)))
	ll.Sub(ll, r.ln(r.int(int64(levee.Scale-limit))))
	ll.Add(ll, r.ln(rs.rest(i)))
	ll.Mul(ll, r.int(rs.b))
	n0 := rs.top - int64(rs.q[i])
	if !buy {
		return -n0, ll.Neg(ll)
	}
	return n0, ll
}

// subsidy is C(q) − min q = (top − min q) + b·ln(1 + Σ_{j≠top} e_j).
func (rs *refState) subsidy() (int64, *big.Float) {
	lo, at := rs.q[0], 0
	for j, v := range rs.q {
		lo = min(lo, v)
		if int64(v) == rs.top {
			at = j
		}
	}
	return rs.top - int64(lo), rs.r.f().Mul(rs.r.log1p(rs.rest(at)), rs.r.int(rs.b))
}

// round rounds n0 + rem up or down. rem is accurate to within 2^−300 of
// max(|rem|, scale); near is true when that does not settle the rounding (an
// exact tie, or a value the reference cannot judge), and the case is skipped.
func (r *ref) round(n0 int64, rem *big.Float, up bool, scale float64) (n int64, near bool) {
	fl := r.f().SetInt64(0)
	if i, _ := rem.Int(nil); i != nil {
		fl.SetInt(i) // truncated toward zero
	}
	if fl.Cmp(rem) > 0 {
		fl.Sub(fl, r.int(1))
	}
	below := r.f().Sub(rem, fl)                      // in [0, 1)
	above := r.f().Sub(r.f().Add(fl, r.int(1)), rem) // in (0, 1]
	eps := r.f().Abs(rem)
	if s := r.f().SetFloat64(scale); s.Cmp(eps) > 0 {
		eps = s
	}
	eps.SetMantExp(eps, -(int(r.prec) - 40))
	whole, _ := fl.Int64()
	n = n0 + whole
	if below.Cmp(eps) <= 0 || above.Cmp(eps) <= 0 {
		return n, true
	}
	if up {
		n++
	}
	return n, false
}

// expm1 returns e^x − 1 with full relative precision for small x.
func (r *ref) expm1(x *big.Float) *big.Float {
	if x.Sign() == 0 || x.MantExp(nil) > -30 {
		e := r.exp(x)
		return e.Sub(e, r.int(1))
	}
	sum, term := r.f().Set(x), r.f().Set(x)
	for k := int64(2); ; k++ {
		term.Mul(term, x)
		term.Quo(term, r.int(k))
		if term.Sign() == 0 || term.MantExp(nil) < x.MantExp(nil)-int(r.prec)-80 {
			return sum
		}
		sum.Add(sum, term)
	}
}

// log1p returns ln(1 + y) with full relative precision for small y.
func (r *ref) log1p(y *big.Float) *big.Float {
	if y.Sign() == 0 || y.MantExp(nil) > -30 {
		return r.ln(r.f().Add(y, r.int(1)))
	}
	sum, pow := r.f().Set(y), r.f().Set(y)
	for k := int64(2); ; k++ {
		pow.Mul(pow, y)
		term := r.f().Quo(pow, r.int(k))
		if k%2 == 0 {
			term.Neg(term)
		}
		if term.Sign() == 0 || term.MantExp(nil) < y.MantExp(nil)-int(r.prec)-80 {
			return sum
		}
		sum.Add(sum, term)
	}
}

// randState draws a state from one of several regimes: ordinary prices,
// prices out in the tails, quantities near MaxShares with a small b, and many
// outcomes.
func randState(rng *rand.Rand) (*State, string) {
	regime := rng.IntN(10)
	n := []int{2, 2, 3, 5, 10}[rng.IntN(5)]
	b := int64(math.Exp(rng.Float64()*math.Log(1e7)) * levee.Scale) // 1 to 1e7 units, log-uniform
	spread := 5.0
	name := "ordinary"
	switch regime {
	case 1:
		spread, name = 300, "tails"
	case 2:
		b, spread, name = int64(1+rng.IntN(1000))*levee.Scale/10+int64(rng.IntN(levee.Scale)), 0, "huge-q"
	case 3:
		n, name = 100, "100-outcomes"
	case 4:
		spread, name = 30, "wide"
	case 5:
		n, name = 2, "branch-edges"
	}
	b = max(b, int64(MinLiquidity))
	q := make([]levee.Micros, n)
	for j := range q {
		if regime == 2 {
			// Anywhere in ±MaxShares, but within a few hundred b of each
			// other so that the reference's exp stays in range.
			base := int64(MaxShares) - int64(rng.IntN(2))*2*int64(MaxShares)
			q[j] = levee.Micros(base/2 + int64(rng.NormFloat64()*50*float64(b)))
			continue
		}
		q[j] = levee.Micros(rng.NormFloat64() * spread * float64(b))
		if regime == 5 {
			// Log-odds around ±700, where the float formulas switch branch.
			q[j] = levee.Micros(float64(j) * (680 + 40*rng.Float64()) * float64(b))
		}
	}
	if regime == 2 {
		top := q[0]
		for _, v := range q {
			top = max(top, v)
		}
		for j := range q {
			q[j] = max(q[j], top-levee.Micros(400*b))
		}
	}
	for j := range q {
		q[j] = min(max(q[j], -MaxShares/2), MaxShares/2)
	}
	s, err := NewState(levee.Micros(b), q)
	if err != nil {
		panic(err)
	}
	return s, name
}

// randAmount draws an amount of shares or money log-uniform between one
// micro-unit and a few hundred b.
func randAmount(rng *rand.Rand, b levee.Micros) levee.Micros {
	hi := math.Log(float64(b) * 300)
	return levee.Micros(max(1, int64(math.Exp(rng.Float64()*hi))))
}

// TestDifferential compares every rounded quantity with the reference's
// correctly rounded value on random states, exactly. On the way it checks that
// each float estimate is inside its error bound with a 16× margin: the fast
// path trusts those bounds to skip the exact test.
func TestDifferential(t *testing.T) {
	r := newRef()
	rng := rand.New(rand.NewPCG(1, 2))
	cases := 2000
	if testing.Short() || raceEnabled {
		cases = 250
	}
	var near int
	worst := map[string]float64{}
	check := func(what string, s *State, got levee.Micros, n0 int64, rem *big.Float, up bool, est, bound float64) {
		t.Helper()
		remf, _ := rem.Float64()
		w := float64(n0) + remf
		ratio := math.Abs(est-w) / bound
		kind, _, _ := strings.Cut(what, "(")
		worst[kind] = max(worst[kind], ratio)
		if ratio > 1.0/16 {
			t.Fatalf("%s on b=%d q=%v: estimate %.17g, reference %.17g, bound %.3g: error is %.3g of the bound",
				what, s.b, s.q, est, w, bound, ratio)
		}
		scale := 0.0
		if kind == "SharesToPrice" {
			scale = float64(s.b) * 64 // rem = b·(logit l + ln Σ…) is only accurate relative to its parts
		}
		n, isNear := r.round(n0, rem, up, scale)
		if isNear {
			near++
			t.Logf("too near to judge: %s b=%d q=%v got %d, reference %d + %s", what, s.b, s.q, got, n0, rem.Text('g', 40))
			return
		}
		if int64(got) != n {
			t.Fatalf("%s on b=%d q=%v: got %d, reference %d (%d + %s)", what, s.b, s.q, got, n, n0, rem.Text('g', 30))
		}
	}
	for c := range cases {
		s, regime := randState(rng)
		i := rng.IntN(s.Outcomes())
		v := s.side(i)
		d := min(randAmount(rng, s.b), MaxShares/2)
		if regime == "branch-edges" && rng.IntN(2) == 0 {
			d = min(levee.Micros((680+40*rng.Float64())*float64(s.b)), MaxShares/2)
		}
		rs := r.state(s)
		got, err := s.BuyCost(i, d)
		if err != nil {
			t.Fatalf("case %d (%s): BuyCost: %v", c, regime, err)
		}
		est, bound := v.buyCostEst(int64(d))
		n0, rem := rs.buyCost(i, d)
		check(fmt.Sprintf("BuyCost(%d, %s)", i, d), s, got, n0, rem, true, est, bound)

		got, err = s.SellProceeds(i, d)
		if err != nil {
			t.Fatalf("case %d (%s): SellProceeds: %v", c, regime, err)
		}
		est, bound = v.sellProceedsEst(int64(d))
		n0, rem = rs.sellProceeds(i, d)
		check(fmt.Sprintf("SellProceeds(%d, %s)", i, d), s, got, n0, rem, false, est, bound)

		spend := min(randAmount(rng, s.b), MaxShares)
		if regime == "branch-edges" && rng.IntN(2) == 0 {
			spend = min(levee.Micros((rng.Float64()*40)*float64(s.b)), MaxShares)
		}
		got, err = s.SharesForSpend(i, spend)
		switch {
		case err == nil:
			est, bound = v.sharesForSpendEst(int64(spend))
			n0, rem := rs.sharesForSpend(i, spend)
			check(fmt.Sprintf("SharesForSpend(%d, %s)", i, spend), s, got, n0, rem, false, est, bound)
			if cost, err := s.BuyCost(i, got); err != nil || cost > spend {
				t.Fatalf("case %d: %s shares for %s cost %s (%v)", c, got, spend, cost, err)
			}
		case levee.ErrorCode(err) != levee.ECONFLICT:
			t.Fatalf("case %d (%s): SharesForSpend: %v", c, regime, err)
		}

		limit := levee.Micros(1 + rng.IntN(levee.Scale-1))
		sd := []Side{Buy, Sell}[rng.IntN(2)]
		got, err = s.SharesToPrice(i, sd, limit)
		if err != nil {
			t.Fatalf("case %d: SharesToPrice: %v", c, err)
		}
		est, bound = v.limitEst(int64(limit), sd == Buy)
		n0, rem = rs.sharesToPrice(i, sd == Buy, limit)
		check(fmt.Sprintf("SharesToPrice(%d, %s, %s)", i, sd, limit), s, got, n0, rem, false, est, bound)

		if c%10 == 0 {
			n0, rem := rs.subsidy()
			check("Subsidy", s, s.Subsidy(), n0, rem, true, 0, math.Inf(1))
		}
	}
	t.Logf("%d cases, %d too near an integer for the reference to judge; worst float error as a fraction of its bound: %v",
		cases, near, worst)
	if near > cases/100 {
		t.Errorf("%d near-integer cases: the generator is degenerate", near)
	}
}
