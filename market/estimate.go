package market

import (
	"math"

	"levee"
)

// This file holds the fast path: float64 estimates of the exact quantities,
// each with a bound on its error in micro-units. roundUp and roundDown accept
// an estimate whenever its error interval holds no micro boundary, and only
// otherwise ask exact.go.

// side describes the market as seen by outcome i against the rest. For n = 2
// it costs no exponential at all, which is what keeps binary markets fast.
type side struct {
	b    float64 // b in micro-units
	rest int64   // m = max_{j≠i} q_j, micro-units
	qd   int64   // q_i − m, exact
	u    float64 // (q_i − m)/b
	t    float64 // ln Σ_{j≠i} exp((q_j − m)/b), in [0, ln(n−1)]
	a    float64 // u − t: the log-odds ln(p_i/(1−p_i))
	n    int
}

func (s *State) side(i int) side {
	v := side{b: float64(s.b), n: len(s.q)}
	first := true
	for j, qj := range s.q {
		if j != i && (first || int64(qj) > v.rest) {
			v.rest, first = int64(qj), false
		}
	}
	if v.n > 2 {
		var sum float64
		for j, qj := range s.q {
			if j != i {
				sum += math.Exp(float64(int64(qj)-v.rest) / v.b)
			}
		}
		v.t = math.Log(sum)
	}
	v.qd = int64(s.q[i]) - v.rest
	v.u = float64(v.qd) / v.b
	v.a = v.u - v.t
	return v
}

// tol is the relative error budget per unit of "size" of a float evaluation
// (see relErr): 32 times the unit roundoff 2^-53. That is several times the
// worst case of the error analysis in docs/lmsr.md, and TestDifferential
// checks that no estimate comes within 16 times of its bound on random
// states (the worst seen is about 50 times inside). A value within the bound
// of a micro boundary is decided exactly, so a larger budget would cost only
// speed, a smaller one correctness.
const tol = 0x1p-48

// tolAbs is the budget for the two estimates whose error is absolute in b
// (limitEst and the subsidy): they sum logarithms of up to n terms.
const tolAbs = 0x1p-46

// absFloor is an absolute error allowance in micro-units. It covers results
// that underflow in float64: any estimate within it of a boundary (a cost of
// 0 in particular) is decided exactly.
const absFloor = 0x1p-20

// relErr bounds the relative error of an evaluation whose inputs are the
// log-odds a = u − t and a ratio x of an amount to b: every input reaches the
// result through an exponential, so its absolute error, about ε·(|u|+x), turns
// into that relative error; the summation over n outcomes adds ε·n.
func (v *side) relErr(x float64) float64 {
	return tol * (16 + math.Abs(v.u) + v.t + x + float64(v.n))
}

// buyCostEst estimates B·ln(1 + p_i·(e^x − 1)), the exact cost of delta
// shares in micro-units, with a bound on its error.
func (v *side) buyCostEst(delta int64) (est, errBound float64) {
	x := float64(delta) / v.b
	a := v.a
	var f float64
	switch {
	case a >= 0:
		// p_i ≥ 1/2: f = x + ln(1 − (1−p_i)(1−e^{−x})), the log term in (−ln 2, 0].
		f = x + math.Log1p(-sigmoid(-a)*-math.Expm1(-x))
	case a > -700 && x < 700:
		f = math.Log1p(sigmoid(a) * math.Expm1(x))
	default:
		// Far tails: ln(p e^x + (1−p)) in log space, nothing overflows.
		f = logAddExp(x+logSigmoid(a), logSigmoid(-a))
	}
	est = f * v.b
	return est, v.relErr(x)*est + absFloor
}

// sellProceedsEst estimates −B·ln(1 − p_i·(1 − e^{−x})), the exact proceeds
// of selling delta shares in micro-units, with a bound on its error.
func (v *side) sellProceedsEst(delta int64) (est, errBound float64) {
	x := float64(delta) / v.b
	var g float64
	if w := sigmoid(v.a) * -math.Expm1(-x); w <= 0.5 {
		g = -math.Log1p(-w)
	} else {
		// 1 − w may cancel; ln((1−p) + p·e^{−x}) in log space does not.
		g = -logAddExp(logSigmoid(-v.a), logSigmoid(v.a)-x)
	}
	est = g * v.b
	return est, v.relErr(x)*est + absFloor
}

// sharesForSpendEst estimates B·ln(1 + (e^z − 1)/p_i), the exact number of
// shares that spend buys, with z = spend/b.
func (v *side) sharesForSpendEst(spend int64) (est, errBound float64) {
	z := float64(spend) / v.b
	lp := logSigmoid(v.a)
	var h float64
	if v.a > -700 && z-lp < 700 {
		h = math.Log1p(math.Expm1(z) / sigmoid(v.a))
	} else {
		h = logAddExp(logExpm1(z)-lp, 0)
	}
	est = h * v.b
	return est, v.relErr(z)*est + absFloor
}

// limitEst estimates the exact number of shares that move p_i to the price
// l/10^6: B·(logit l − logit p_i) for a buy, its negation for a sell. As
// logit p_i = (q_i − m)/b − t, that is (m − q_i) + B·(logit l + t): the q
// difference is an exact integer, so only B·(…) carries error, and it is
// absolute, so the bound is too.
func (v *side) limitEst(l int64, buy bool) (est, errBound float64) {
	lg := math.Log(float64(l)) - math.Log(float64(levee.Scale-l))
	d := v.b * (lg + v.t)
	if buy {
		est = d - float64(v.qd)
	} else {
		est = float64(v.qd) - d
	}
	errBound = tolAbs*v.b*(math.Abs(lg)+v.t+16+float64(v.n)) + tolAbs*math.Abs(est) + absFloor
	return est, errBound
}

// sigmoid returns 1/(1+e^{−z}) without overflow.
func sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// logSigmoid returns ln(1/(1+e^{−z})) = −ln(1+e^{−z}) accurately for all z.
func logSigmoid(z float64) float64 {
	if z >= 0 {
		return -math.Log1p(math.Exp(-z))
	}
	return z - math.Log1p(math.Exp(z))
}

// logAddExp returns ln(e^x + e^y) without overflow.
func logAddExp(x, y float64) float64 {
	if x < y {
		x, y = y, x
	}
	return x + math.Log1p(math.Exp(y-x))
}

// logExpm1 returns ln(e^z − 1) for z > 0 without overflow.
func logExpm1(z float64) float64 {
	if z < 1 {
		return math.Log(math.Expm1(z))
	}
	return z + math.Log1p(-math.Exp(-z))
}
