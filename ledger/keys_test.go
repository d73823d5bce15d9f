package ledger

import (
	"math"
	"strconv"
	"testing"
)

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want Key
		ok   bool
	}{
		{Cash(42), Key{Kind: KindCash, ID: 42}, true},
		{Collateral(7), Key{Kind: KindMarket, ID: 7, Part: "collateral"}, true},
		{Held(7), Key{Kind: KindMarket, ID: 7, Part: "held"}, true},
		{BudgetLine(3), Key{Kind: KindBudget, ID: 3}, true},
		{Escrow(9), Key{Kind: KindEscrow, ID: 9}, true},
		{CaseFees(5), Key{Kind: KindCase, ID: 5, Part: "fees"}, true},
		{CaseSeats(5), Key{Kind: KindCase, ID: 5, Part: "seats"}, true},
		{CaseBonds(5), Key{Kind: KindCase, ID: 5, Part: "bonds"}, true},
		{RoundPool(2), Key{Kind: KindRound, ID: 2, Part: "pool"}, true},
		{RoundEscrow(2), Key{Kind: KindRound, ID: 2, Part: "escrow"}, true},
		{Exit(4), Key{Kind: KindExit, ID: 4}, true},
		{carryAccount, Key{Kind: KindEpoch, ID: 2, Part: "carry"}, true},
		{Treasury, Key{Kind: Treasury}, true},
		{Issuance, Key{Kind: Issuance}, true},
		{"cash:007", Key{}, false},
		{"cash:-1", Key{}, false},
		{"cash:1:held", Key{}, false},
		{"market:1", Key{}, false},
		{"market:1:other", Key{}, false},
		{"nothing:1", Key{}, false},
		{"cash:", Key{}, false},
		{"", Key{}, false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			got, ok := ParseKey(tc.key)
			if ok != tc.ok || (ok && got != tc.want) {
				t.Fatalf("ParseKey(%q) = %+v, %t; want %+v, %t", tc.key, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestKeysSpelling: every key function spells its key as prefix, id and
// part, whatever the id, in one allocation.
func TestKeysSpelling(t *testing.T) {
	for _, id := range []int64{0, 7, 99, 100, 123456789, math.MaxInt64, -1} {
		n := strconv.FormatInt(id, 10)
		for got, want := range map[string]string{
			Cash(id): "cash:" + n, Collateral(id): "market:" + n + ":collateral", Held(id): "market:" + n + ":held",
			BudgetLine(id): "budget:" + n, Escrow(id): "escrow:" + n, CaseFees(id): "case:" + n + ":fees",
			CaseSeats(id): "case:" + n + ":seats", CaseBonds(id): "case:" + n + ":bonds", RoundPool(id): "qf:" + n + ":pool",
			RoundEscrow(id): "qf:" + n + ":escrow", Exit(id): "exit:" + n,
		} {
			if got != want {
				t.Errorf("%q, want %q", got, want)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Collateral(123456789) }); n != 1 {
		t.Errorf("Collateral: %v allocations, want 1", n)
	}
}
