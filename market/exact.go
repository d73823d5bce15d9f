package market

import (
	"cmp"
	"math"
	"math/big"
	"slices"
)

// This file decides, exactly, the rare roundings that float64 cannot.
//
// Every quantity the market rounds is a comparison between sums of
// exponentials of rationals in disguise. For instance the cost of buying Δ is
// at most N micro-units exactly when
//
//	Σ_j e^{q'_j/b} − Σ_j e^{(q_j+N)/b} ≤ 0,
//
// and all of q, q', N and b are integers in micro-units. By the
// Lindemann–Weierstrass theorem such a sum with distinct exponents and
// non-zero integer coefficients is never zero, so after merging equal
// exponents (exactly, as integers) its sign is either 0 (nothing left: an
// exact tie, which really happens, e.g. buying 2c of outcome 0 at q = (0, c)
// costs exactly c) or can be found by evaluating it with enough precision.
// expSumSign does that with math/big, doubling the precision until the sum is
// clear of its error bound.

// expTerm is the term c·e^{k/d} of a sum whose denominator d is given
// separately (it is always b in micro-units).
type expTerm struct{ c, k int64 }

// maxSignPrec caps the precision expSumSign tries. A sum that is still not
// clear of its error bound at this many bits would need terms cancelling to
// one part in 2^8192; with at most 2·MaxOutcomes terms and exponents at least
// 1/MaxLiquidity apart this does not happen in practice, and if it ever did
// the caller rounds in the house's favour.
const maxSignPrec = 8192

// expSumSign returns the sign of Σ c·e^{k/d} for d > 0. It sorts and
// merges terms in place. ok is false only when maxSignPrec bits did not
// suffice (see above).
func expSumSign(terms []expTerm, d int64) (sign int, ok bool) {
	slices.SortFunc(terms, func(x, y expTerm) int { return cmp.Compare(x.k, y.k) })
	merged := terms[:0]
	for _, t := range terms {
		if n := len(merged); n > 0 && merged[n-1].k == t.k {
			merged[n-1].c += t.c
		} else {
			merged = append(merged, t)
		}
	}
	var a float64 // Σ|c|: bounds the sum of |terms| because every e^{(k−top)/d} ≤ 1
	kept := merged[:0]
	for _, t := range merged {
		if t.c != 0 {
			kept = append(kept, t)
			a += math.Abs(float64(t.c))
		}
	}
	if len(kept) == 0 {
		return 0, true
	}
	top := kept[len(kept)-1].k // scale everything by e^{−top/d}: exponents ≤ 0
	for prec := uint(128); prec <= maxSignPrec; prec *= 2 {
		w := prec + 64
		// Terms below e^{−cut} are dropped: together they weigh less than
		// 2^{−(prec+64)}, inside the error bound.
		cut := (float64(prec)+64)*math.Ln2 + math.Log(a) + 1
		den := new(big.Float).SetPrec(w).SetInt64(d)
		sum := new(big.Float).SetPrec(w)
		r := new(big.Float).SetPrec(w)
		c := new(big.Float).SetPrec(w)
		for _, t := range kept {
			gap := top - t.k
			if float64(gap) > cut*float64(d) {
				continue
			}
			r.SetInt64(-gap)
			r.Quo(r, den)
			e := bigExp(r, w)
			e.Mul(e, c.SetInt64(t.c))
			sum.Add(sum, e)
		}
		// Each term is within 2^{−w+2} relative, the additions add at most
		// 2^{−w} of Σ|terms| each; with ≤ 2^10 terms all that and the dropped
		// tail stay below a·2^{−prec}.
		bound := new(big.Float).SetMantExp(big.NewFloat(a), -int(prec))
		if new(big.Float).Abs(sum).Cmp(bound) > 0 {
			return sum.Sign(), true
		}
	}
	return 0, false
}

// bigExp returns e^r, for r ≤ 0 of modest size, with a relative error below
// 2^{−prec}. It halves r until |r| < 2^{−12}, sums the Taylor series and
// squares back; the working precision pays for the bits each squaring loses.
func bigExp(r *big.Float, prec uint) *big.Float {
	h := 0
	if r.Sign() != 0 {
		h = max(0, r.MantExp(nil)+12)
	}
	w := prec + uint(h) + 32
	y := new(big.Float).SetPrec(w).SetMantExp(r, -h)
	sum := new(big.Float).SetPrec(w).SetInt64(1)
	term := new(big.Float).SetPrec(w).SetInt64(1)
	k := new(big.Float).SetPrec(64)
	for i := int64(1); ; i++ {
		term.Mul(term, y)
		term.Quo(term, k.SetInt64(i))
		if term.Sign() == 0 || term.MantExp(nil) < -int(w) {
			break
		}
		sum.Add(sum, term)
	}
	for ; h > 0; h-- {
		sum.Mul(sum, sum)
	}
	return sum.SetPrec(prec)
}

// roundUp returns the least integer N with v ≤ N, for an exact value v known
// to lie within errBound of est. Only when that interval straddles an integer
// does it ask le(N), the exact "v ≤ N", by bisection.
func roundUp(est, errBound float64, le func(n int64) bool) int64 {
	lo, hi := math.Ceil(est-errBound), math.Ceil(est+errBound)
	if lo == hi {
		return int64(hi)
	}
	l, h := int64(lo), int64(hi) // le(h) holds
	for l < h {
		mid := l + (h-l)/2
		if le(mid) {
			h = mid
		} else {
			l = mid + 1
		}
	}
	return l
}

// roundDown returns the greatest integer N with v ≥ N, for an exact value v
// known to lie within errBound of est; ge(N) is the exact "v ≥ N".
func roundDown(est, errBound float64, ge func(n int64) bool) int64 {
	lo, hi := math.Floor(est-errBound), math.Floor(est+errBound)
	if lo == hi {
		return int64(lo)
	}
	l, h := int64(lo), int64(hi) // ge(l) holds
	for l < h {
		mid := l + (h-l+1)/2
		if ge(mid) {
			l = mid
		} else {
			h = mid - 1
		}
	}
	return l
}
