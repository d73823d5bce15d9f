package naive_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"levee"
	"levee/accounts"
	"levee/bench/naive"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/migrations/dbtest"
)

// TestNaiveMatchesTheEngine runs the same random order flow through the
// engine on one market and through the naive path on an identical market,
// and requires the same fills, prices and cash, exactly.
func TestNaiveMatchesTheEngine(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	acc, led := accounts.New(db), ledger.New(db)
	if _, err := acc.CreateDistrict(ctx, 0, "north"); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.IssueToTreasury(ctx, 0, levee.Units(10_000), "test"); err != nil {
		t.Fatal(err)
	}
	e := engine.New(db, engine.Options{})
	t.Cleanup(e.Close)
	n := naive.New(e, db)

	trader := func(name string) int64 {
		a, _, err := acc.CreateAccount(ctx, 0, accounts.NewAccount{Name: name, Roles: []string{"resident"}, District: "north", Credit: levee.Units(500)})
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	mkt := func() int64 {
		m, err := e.CreateMarket(ctx, engine.NewMarket{Question: "Will the levee hold?", Outcomes: []string{"yes", "no", "maybe"},
			Liquidity: levee.Units(50), ClosesAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	fast, slow := mkt(), mkt()
	alice, bob := trader("alice"), trader("bob")

	rng := rand.New(rand.NewPCG(1, 2))
	held := make([]levee.Micros, 3)
	for i := 0; i < 60; i++ {
		o := market.Order{Outcome: rng.IntN(3), Side: market.Buy, Shares: levee.Micros(1 + rng.Int64N(20*levee.Scale))}
		switch k := rng.IntN(4); {
		case k == 0:
			o.Shares, o.Amount = 0, levee.Micros(1+rng.Int64N(30*levee.Scale))
		case k == 1 && held[o.Outcome] > 0:
			o.Side, o.Shares = market.Sell, min(o.Shares, held[o.Outcome])
		case k == 2 && held[o.Outcome] > 0:
			o.Side, o.Shares, o.All = market.Sell, 0, true
		}
		want, werr := e.Submit(ctx, alice, fast, o, "")
		got, gerr := n.Submit(ctx, bob, slow, o, "")
		if levee.ErrorCode(werr) != levee.ErrorCode(gerr) || levee.ErrorMessage(werr) != levee.ErrorMessage(gerr) {
			t.Fatalf("order %d %+v: engine says %v, naive says %v", i, o, werr, gerr)
		}
		if werr != nil {
			continue
		}
		if got.Seq != want.Seq || got.Shares != want.Shares || got.Cost != want.Cost || got.Proceeds != want.Proceeds ||
			got.Side != want.Side || !slices.Equal(got.Prices, want.Prices) {
			t.Fatalf("order %d %+v:\nengine %+v\nnaive  %+v", i, o, want, got)
		}
		if o.Side == market.Buy {
			held[o.Outcome] += got.Shares
		} else {
			held[o.Outcome] -= got.Shares
		}
	}
	a, _ := acc.Get(ctx, alice)
	b, _ := acc.Get(ctx, bob)
	if a.Cash != b.Cash {
		t.Fatalf("cash after the same orders: engine %s, naive %s", a.Cash, b.Cash)
	}
	// A retried key returns the first result and trades once.
	o := market.Order{Outcome: 0, Side: market.Buy, Shares: levee.Units(1)}
	r1, err := n.Submit(ctx, bob, slow, o, "k1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := n.Submit(ctx, bob, slow, o, "k1")
	if err != nil || r2.Seq != r1.Seq || r2.Cost != r1.Cost {
		t.Fatalf("retry: %+v %v, first %+v", r2, err, r1)
	}
	if _, err := n.Submit(ctx, bob, slow, market.Order{Outcome: 1, Side: market.Buy, Shares: levee.Units(1)}, "k1"); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("key reused for another order: %v", err)
	}
	if r, err := led.Verify(ctx); err != nil || !r.OK {
		t.Fatalf("ledger does not verify: %+v %v", r, err)
	}
}
