package engine_test

import (
	"context"
	"testing"

	"levee"
	"levee/market"
	"levee/market/engine"
)

// TestVolumeStopsAtMaxMoney: round trips grow a market's volume without
// bound; it stops at MaxMoney, so the row always loads again (a volume past
// the bound used to make the market unreadable after a restart) and the
// census's sum of volumes reads too.
func TestVolumeStopsAtMaxMoney(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	// As if a whale had round-tripped most of the money supply through it.
	if _, err := f.db.Exec(`UPDATE markets SET volume = $2 WHERE id = $1`, m.ID, levee.MaxMoney-levee.Units(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec(`UPDATE markets SET volume = $1 WHERE id <> $2`, levee.MaxMoney, m.ID); err != nil {
		t.Fatal(err)
	}
	f.restart()
	for i := range 4 {
		if _, err := f.e.Submit(ctx, alice, m.ID, market.Order{Outcome: i % 2, Side: market.Buy, Amount: levee.Units(5)}, ""); err != nil {
			t.Fatal(err)
		}
	}
	f.restart()
	s, err := f.e.Snapshot(ctx, m.ID)
	if err != nil || s.Market.Volume != levee.MaxMoney {
		t.Fatalf("after the restart: %+v %v", s.Market.Volume, err)
	}
	if st, err := f.e.Stats(ctx); err != nil || st.Volume != levee.MaxMoney {
		t.Fatalf("stats: %+v %v", st, err)
	}
	f.MustVerify()
}

// TestPagesPastInt4: a cursor past the int4 range is just a page, not a
// database error (PostgreSQL types "$1 = 0" as integer unless told).
func TestPagesPastInt4(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	m := f.MustMarket(levee.Units(10), "yes", "no")
	ms, err := f.e.List(ctx, engine.Filter{AfterID: 1 << 40, Limit: 10})
	if err != nil || len(ms) != 1 || ms[0].ID != m.ID {
		t.Fatalf("markets before 2^40: %+v %v", ms, err)
	}
	if _, err := f.e.Trades(ctx, m.ID, 1<<40, 10); err != nil {
		t.Fatalf("trades before 2^40: %v", err)
	}
}
