package ledger

import "testing"

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
