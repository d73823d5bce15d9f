package budgets_test

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"levee"
	"levee/budgets"
)

// contribs builds contributions to project p from accounts 1, 2, ... in units.
func contribs(p int64, units ...int64) []budgets.Contribution {
	cs := make([]budgets.Contribution, len(units))
	for i, u := range units {
		cs[i] = budgets.Contribution{Project: p, Account: int64(i + 1), Amount: levee.Units(u)}
	}
	return cs
}

func join(css ...[]budgets.Contribution) []budgets.Contribution {
	var out []budgets.Contribution
	for _, cs := range css {
		out = append(out, cs...)
	}
	return out
}

func TestMatch(t *testing.T) {
	// The worked example: raw matches 34, 54 and 162 (units) share a
	// pool of 100 as 13.6, 21.6 and 64.8.
	worked := join(contribs(1, 1, 4, 1, 9), contribs(2, 1, 1, 1, 1, 1, 1, 4), contribs(3, 1, 9, 1, 9, 1, 9, 4))
	tests := []struct {
		name     string
		projects []int64
		cs       []budgets.Contribution
		pool     string
		capShare string
		raw      []string
		matches  []string
		returned string
	}{
		{"worked example", []int64{1, 2, 3}, worked, "100", "", []string{"34", "54", "162"}, []string{"13.6", "21.6", "64.8"}, "0"},
		{"pool larger than the raw matches", []int64{1, 2, 3}, worked, "1000", "", []string{"34", "54", "162"}, []string{"34", "54", "162"}, "750"},
		{"single contributors get nothing", []int64{1, 2}, join(contribs(1, 100), contribs(2, 1, 1)), "10", "", []string{"0", "2"}, []string{"0", "2"}, "8"},
		{"no contributions at all", []int64{1, 2}, nil, "10", "", []string{"0", "0"}, []string{"0", "0"}, "10"},
		// Raw 1, 1, 1 share a pool of 0.000010: 3.33… micro-units each,
		// floored to 3; the one micro-unit of dust returns.
		{"dust returns", []int64{1, 2, 3}, join(contribs(1, 1, 0), contribs(2, 0, 1, 1), contribs(3, 1, 1)), "0.00001", "", []string{"0", "2", "2"}, []string{"0", "0.000005", "0.000005"}, "0"},
		{"dust floors", []int64{1, 2, 3}, join(contribs(1, 1, 1), contribs(2, 1, 1), contribs(3, 1, 1)), "0.00001", "", []string{"2", "2", "2"}, []string{"0.000003", "0.000003", "0.000003"}, "0.000001"},
		// Cap 0.4 × 100 = 40: project 3 (64.8) is clamped to 40; its 24.8
		// goes to 1 and 2 in proportion 34:54, i.e. 60 × 34/88 and 60 × 54/88.
		{"cap redistributes", []int64{1, 2, 3}, worked, "100", "0.4", []string{"34", "54", "162"}, []string{"23.181818", "36.818181", "40"}, "0.000001"},
		// Cap 0.3 × 100 = 30: 3 is clamped first; then 2 (60 × 54/88 = 36.8)
		// is over too and is clamped in the second pass; in the third, 1
		// alone would get its whole raw 34, over the cap, so it is clamped
		// too and 10 returns.
		{"cap iterates", []int64{1, 2, 3}, worked, "100", "0.3", []string{"34", "54", "162"}, []string{"30", "30", "30"}, "10"},
		{"cap leaves raw below it alone", []int64{1, 2, 3, 4}, join(worked, contribs(4, 1, 1)), "1000", "0.1", []string{"34", "54", "162", "2"}, []string{"34", "54", "100", "2"}, "810"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := levee.MustMicros(tt.pool)
			var capAmount levee.Micros
			if tt.capShare != "" {
				capAmount = budgets.CapOf(pool, levee.MustMicros(tt.capShare))
			}
			m := budgets.Match(tt.projects, tt.cs, pool, capAmount)
			for i, p := range m.Projects {
				if got, want := budgets.MicrosString(p.Raw), levee.MustMicros(tt.raw[i]).String(); got != want {
					t.Errorf("project %d raw %s, want %s", p.Project, got, want)
				}
				if got, want := p.Match, levee.MustMicros(tt.matches[i]); got != want {
					t.Errorf("project %d match %s, want %s", p.Project, got, want)
				}
			}
			if m.Returned != levee.MustMicros(tt.returned) {
				t.Errorf("returned %s, want %s", m.Returned, tt.returned)
			}
			if m.Paid+m.Returned != pool {
				t.Errorf("paid %s + returned %s != pool %s", m.Paid, m.Returned, pool)
			}
		})
	}
}

func TestWorkedExampleExactly(t *testing.T) {
	cs := join(contribs(1, 1, 4, 1, 9), contribs(2, 1, 1, 1, 1, 1, 1, 4), contribs(3, 1, 9, 1, 9, 1, 9, 4))
	m := budgets.Match([]int64{3, 1, 2}, cs, levee.Units(100), 0)
	want := []string{"13.600000", "21.600000", "64.800000"}
	for i, p := range m.Projects {
		if p.Match.String() != want[i] {
			t.Errorf("project %d: %s, want %s", p.Project, p.Match, want[i])
		}
	}
	// s_i counts √micro-units: 1 unit is 10^6 micro-units, whose root is 1000.
	if got := m.Projects[0].SumSqrt.String(); got != "7000" {
		t.Errorf("Σ s for project 1 = %s, want 7000", got)
	}
	if m.Returned != 0 || m.TotalRaw.Cmp(big.NewInt(250_000_000)) != 0 {
		t.Errorf("returned %s, total raw %s", m.Returned, m.TotalRaw)
	}
}

func TestISqrt(t *testing.T) {
	for _, tt := range []struct{ n, want int64 }{{0, 0}, {1, 1}, {3, 1}, {4, 2}, {999_999, 999}, {1_000_000, 1000}, {int64(levee.MaxMoney), 1_000_000_000}} {
		if got := budgets.ISqrt(levee.Micros(tt.n)); got != tt.want {
			t.Errorf("ISqrt(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// TestMatchProperties checks on random rounds that the pool is accounted
// for exactly, that no match passes its raw match or the cap, and that the
// floors lose less than one micro-unit per project.
func TestMatchProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 2000; iter++ {
		nProjects := 1 + r.IntN(6)
		projects := make([]int64, nProjects)
		for i := range projects {
			projects[i] = int64(i + 1)
		}
		var cs []budgets.Contribution
		for n := r.IntN(30); n > 0; n-- {
			amt := levee.Micros(1 + r.Int64N(int64(levee.Units(1000))))
			if r.IntN(3) == 0 {
				amt = levee.Micros(1 + r.Int64N(100))
			}
			cs = append(cs, budgets.Contribution{Project: 1 + r.Int64N(int64(nProjects)), Account: 1 + r.Int64N(8), Amount: amt})
		}
		pool := levee.Micros(1 + r.Int64N(int64(levee.Units(10000))))
		var capAmount levee.Micros
		if r.IntN(2) == 0 {
			capAmount = budgets.CapOf(pool, levee.Micros(1+r.Int64N(levee.Scale)))
		}
		m := budgets.Match(projects, cs, pool, capAmount)
		var paid levee.Micros
		ceilings := new(big.Int)
		for _, p := range m.Projects {
			if p.Match < 0 || big.NewInt(int64(p.Match)).Cmp(p.Raw) > 0 || capAmount > 0 && p.Match > capAmount {
				t.Fatalf("iteration %d: project %d match %s, raw %s, cap %s", iter, p.Project, p.Match, p.Raw, capAmount)
			}
			paid += p.Match
			c := new(big.Int).Set(p.Raw)
			if capAmount > 0 && c.Cmp(big.NewInt(int64(capAmount))) > 0 {
				c.SetInt64(int64(capAmount))
			}
			ceilings.Add(ceilings, c)
		}
		if paid != m.Paid || m.Paid+m.Returned != pool || m.Returned < 0 {
			t.Fatalf("iteration %d: paid %s + returned %s != pool %s", iter, m.Paid, m.Returned, pool)
		}
		// What should be paid is min(pool, Σ ceilings); floors lose < 1 each.
		target := ceilings
		if target.Cmp(big.NewInt(int64(pool))) > 0 {
			target = big.NewInt(int64(pool))
		}
		lost := new(big.Int).Sub(target, big.NewInt(int64(paid)))
		if lost.Sign() < 0 || lost.Cmp(big.NewInt(int64(nProjects))) >= 0 {
			t.Fatalf("iteration %d: paid %s of a target %s", iter, paid, target)
		}
	}
}

func TestExplainFor(t *testing.T) {
	cs := contribs(1, 1, 4, 1, 9)
	ex := budgets.ExplainFor(4, cs)
	// With account 4: raw 34. Without: s = 1, 2, 1 → 16 − 6 = 10. Added 24 = 2·3000·4000 µ.
	if len(ex) != 1 || ex[0].RawWith != "34.000000" || ex[0].RawWithout != "10.000000" || ex[0].Added != "24.000000" || ex[0].Sqrt != 3000 {
		t.Fatalf("explain: %+v", ex)
	}
	if got := budgets.ExplainFor(99, cs); len(got) != 0 {
		t.Fatalf("explain for a non-contributor: %+v", got)
	}
}
