package engine_test

import (
	"context"
	"testing"

	"levee"
	"levee/market"
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
