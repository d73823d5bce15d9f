package budgets

import (
	"math/big"
	"sort"

	"levee"
)

// The matching maths of quadratic funding, exact in integers. Everything here
// is pure: no SQL, no clock. docs/budgets.md explains the rules and the units.

// Contribution is one resident's total contribution to one project, in
// micro-units. Several contributions by the same account to the same project
// are added together before the square root is taken.
type Contribution struct {
	Project int64
	Account int64
	Amount  levee.Micros
}

// ProjectMatch is the outcome of matching for one project.
type ProjectMatch struct {
	Project      int64
	Contributors int
	// Sum is Σ c_i, the contributions, in micro-units.
	Sum levee.Micros
	// SumSqrt is Σ s_i with s_i = ⌊√c_i⌋, c_i counted in micro-units; it is
	// therefore in units of √micro (1 unit contributed gives s = 1000).
	SumSqrt *big.Int
	// SumSquares is Σ s_i², in micro-units.
	SumSquares *big.Int
	// Raw is (Σ s_i)² − Σ s_i², in micro-units.
	Raw *big.Int
	// Match is what the project receives from the pool, in micro-units.
	Match levee.Micros
	// Capped says the per-project cap bound this project's match.
	Capped bool
}

// Matching is the outcome of matching a whole round.
type Matching struct {
	Projects []ProjectMatch // in project id order
	Pool     levee.Micros
	Cap      levee.Micros // 0 when the round has no cap
	TotalRaw *big.Int
	Paid     levee.Micros // Σ Match
	Returned levee.Micros // Pool − Paid: unused pool and rounding dust
}

// ISqrt returns ⌊√n⌋ for n ≥ 0.
func ISqrt(n levee.Micros) int64 {
	if n <= 0 {
		return 0
	}
	return new(big.Int).Sqrt(big.NewInt(int64(n))).Int64()
}

// RawMatch returns (Σ s)² − Σ s² for the square roots s of the contributors.
func RawMatch(roots []int64) *big.Int {
	sum, sq := new(big.Int), new(big.Int)
	for _, s := range roots {
		b := big.NewInt(s)
		sum.Add(sum, b)
		sq.Add(sq, new(big.Int).Mul(b, b))
	}
	return sum.Mul(sum, sum).Sub(sum, sq)
}

// CapOf returns the per-project cap for a pool and a share of it (share in
// micro-units, 1.0 = 1_000_000), floored to the micro-unit. A share of 0
// means no cap and returns 0.
func CapOf(pool, share levee.Micros) levee.Micros {
	if share <= 0 {
		return 0
	}
	c := new(big.Int).Mul(big.NewInt(int64(pool)), big.NewInt(int64(share)))
	return levee.Micros(c.Quo(c, big.NewInt(levee.Scale)).Int64())
}

// Match computes the matches of a round. projects lists every project that
// takes part (so a project without contributions still appears, with zero);
// contributions for other projects are ignored. capAmount 0 means no cap.
//
// The rule (docs/budgets.md): each project's ceiling is min(raw, cap). The
// pool is shared in proportion to the raw matches, never giving a project
// more than its raw match: when the raw matches add up to more than the pool
// every project gets the same fraction λ = pool / Σ raw of its raw match;
// a project whose share would pass the cap gets the cap, and what it could
// not take goes to the others in proportion to their raw matches, repeated
// until no project is over the cap. Each match is floored to the micro-unit;
// everything not paid returns to the treasury.
func Match(projects []int64, contributions []Contribution, pool, capAmount levee.Micros) Matching {
	ids := append([]int64(nil), projects...)
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	index := make(map[int64]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	type key struct{ project, account int64 }
	per := map[key]levee.Micros{}
	var keys []key
	for _, c := range contributions {
		if _, ok := index[c.Project]; !ok || c.Amount <= 0 {
			continue
		}
		k := key{c.Project, c.Account}
		if _, seen := per[k]; !seen {
			keys = append(keys, k)
		}
		per[k] += c.Amount
	}
	out := Matching{Pool: pool, Cap: capAmount, TotalRaw: new(big.Int), Projects: make([]ProjectMatch, len(ids))}
	roots := make([][]int64, len(ids))
	for i, id := range ids {
		out.Projects[i] = ProjectMatch{Project: id, SumSqrt: new(big.Int), SumSquares: new(big.Int)}
	}
	for _, k := range keys {
		i := index[k.project]
		p := &out.Projects[i]
		c := per[k]
		s := ISqrt(c)
		p.Contributors++
		p.Sum += c
		p.SumSqrt.Add(p.SumSqrt, big.NewInt(s))
		p.SumSquares.Add(p.SumSquares, new(big.Int).Mul(big.NewInt(s), big.NewInt(s)))
		roots[i] = append(roots[i], s)
	}
	for i := range out.Projects {
		p := &out.Projects[i]
		p.Raw = RawMatch(roots[i])
		out.TotalRaw.Add(out.TotalRaw, p.Raw)
	}
	allocate(out.Projects, pool, capAmount)
	for _, p := range out.Projects {
		out.Paid += p.Match
	}
	out.Returned = pool - out.Paid
	return out
}

// allocate sets Match and Capped on ps: water-filling in proportion to Raw
// under the ceiling min(Raw, cap), in exact rational arithmetic, floored once
// at the end.
func allocate(ps []ProjectMatch, pool, capAmount levee.Micros) {
	capB := big.NewInt(int64(capAmount))
	capped := make([]bool, len(ps))
	for {
		// remaining: the pool less what capped projects already hold.
		remaining := big.NewInt(int64(pool))
		rawSum := new(big.Int)
		for i, p := range ps {
			if capped[i] {
				remaining.Sub(remaining, capB)
			} else {
				rawSum.Add(rawSum, p.Raw)
			}
		}
		if rawSum.Sign() == 0 {
			break
		}
		// λ = min(remaining, rawSum) / rawSum; a project's share is Raw·λ.
		num := remaining
		if rawSum.Cmp(remaining) < 0 {
			num = rawSum
		}
		if capAmount <= 0 {
			setShares(ps, capped, num, rawSum)
			return
		}
		over := false
		for i, p := range ps {
			// Raw·num/rawSum > cap  ⇔  Raw·num > cap·rawSum
			if !capped[i] && new(big.Int).Mul(p.Raw, num).Cmp(new(big.Int).Mul(capB, rawSum)) > 0 {
				capped[i], over = true, true
			}
		}
		if !over {
			setShares(ps, capped, num, rawSum)
			break
		}
	}
	for i := range ps {
		if capped[i] {
			ps[i].Match, ps[i].Capped = capAmount, true
		}
	}
}

// setShares gives each uncapped project ⌊Raw·num/rawSum⌋.
func setShares(ps []ProjectMatch, capped []bool, num, rawSum *big.Int) {
	for i := range ps {
		if capped[i] {
			continue
		}
		m := new(big.Int).Mul(ps[i].Raw, num)
		ps[i].Match = levee.Micros(m.Quo(m, rawSum).Int64())
	}
}

// Explain is what one contributor added to one project's raw match.
type Explain struct {
	Project     int64        `json:"project,string"`
	Contributed levee.Micros `json:"contributed"`
	Sqrt        int64        `json:"sqrt"`
	// RawWith and RawWithout are the project's raw match with and without
	// this contributor; Added is their difference, 2·s·(Σ s − s).
	RawWith    string `json:"raw_match_with"`
	RawWithout string `json:"raw_match_without"`
	Added      string `json:"added"`
}

// ExplainFor computes, for account, what its contributions added to the raw
// match of every project it contributed to, in project id order.
func ExplainFor(account int64, contributions []Contribution) []Explain {
	per := map[int64]map[int64]levee.Micros{}
	for _, c := range contributions {
		if per[c.Project] == nil {
			per[c.Project] = map[int64]levee.Micros{}
		}
		per[c.Project][c.Account] += c.Amount
	}
	var out []Explain
	for project, byAccount := range per {
		mine, ok := byAccount[account]
		if !ok {
			continue
		}
		var with, without []int64
		for a, c := range byAccount {
			s := ISqrt(c)
			with = append(with, s)
			if a != account {
				without = append(without, s)
			}
		}
		rw, ro := RawMatch(with), RawMatch(without)
		out = append(out, Explain{Project: project, Contributed: mine, Sqrt: ISqrt(mine),
			RawWith: MicrosString(rw), RawWithout: MicrosString(ro), Added: MicrosString(new(big.Int).Sub(rw, ro))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Project < out[j].Project })
	return out
}

// MicrosString formats a micro-unit count of any size with six decimals,
// like levee.Micros.String.
func MicrosString(n *big.Int) string {
	if n.IsInt64() {
		return levee.Micros(n.Int64()).String()
	}
	q, r := new(big.Int).QuoRem(new(big.Int).Abs(n), big.NewInt(levee.Scale), new(big.Int))
	sign := ""
	if n.Sign() < 0 {
		sign = "-"
	}
	frac := r.String()
	for len(frac) < 6 {
		frac = "0" + frac
	}
	return sign + q.String() + "." + frac
}
