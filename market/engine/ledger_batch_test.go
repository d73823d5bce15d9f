package engine_test

import (
	"context"
	"fmt"
	"testing"

	"levee"
	"levee/ledger"
	"levee/market/engine"
)

// TestOneLedgerEntryPerBatch: orders that commit together on one market
// are one ledger entry (kind trades), not one each. The entry's ref names
// the trades' range; every trader's cash posting is there, in the order of
// the trades and with its trade's amount, and the collateral gets one net
// posting. The ledger verifies and every trader's cash is what the trades
// say. A buy and a sale by one trader in the same batch both keep their
// postings.
func TestOneLedgerEntryPerBatch(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	m := f.MustMarket(levee.Units(50), "yes", "no")
	gate := f.MustAccount("gate", levee.Units(100))
	seller := f.MustAccount("seller", levee.Units(100))
	if _, err := f.e.Submit(ctx, seller, m.ID, buy(1, "5"), ""); err != nil {
		t.Fatal(err)
	}
	var traders []int64
	for i := range 12 {
		traders = append(traders, f.MustAccount(fmt.Sprintf("t%d", i), levee.Units(100)))
	}
	// Hold the market's row so that the gate order's commit waits, and line
	// the others up behind it: they become one batch.
	hold := f.holdMarketRow(m.ID)
	errs := make(chan error, 2+len(traders))
	go func() { _, err := f.e.Submit(ctx, gate, m.ID, buy(0, "1"), ""); errs <- err }()
	MustPoll(t, "the gate order at the journal", f.lockWaits(1))
	queued := 0
	for i, a := range traders {
		go func() { _, err := f.e.Submit(ctx, a, m.ID, buy(i%2, "2"), ""); errs <- err }()
		queued++
		MustPoll(t, "the order queued", func() bool { return engine.QueuedOrders(f.e, m.ID) == queued })
		if i == 5 {
			go func() { _, err := f.e.Submit(ctx, seller, m.ID, sell(1, "5"), ""); errs <- err }()
			queued++
			MustPoll(t, "the sale queued", func() bool { return engine.QueuedOrders(f.e, m.ID) == queued })
		}
	}
	hold.Rollback()
	for range 1 + queued {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	var entries []struct {
		Seq int64  `db:"seq"`
		Ref string `db:"ref"`
	}
	if err := f.db.Select(&entries, `SELECT seq, ref FROM ledger_entries WHERE kind = 'trades' AND ref LIKE $1 ORDER BY seq`,
		fmt.Sprintf("market:%d/%%", m.ID)); err != nil {
		t.Fatal(err)
	}
	last := entries[len(entries)-1]
	if len(entries) != 3 || last.Ref != fmt.Sprintf("market:%d/trades:3-%d", m.ID, 2+queued) {
		t.Fatalf("entries %+v, want the first buy, the gate and one for trades 3-%d", entries, 2+queued)
	}
	var trades []struct {
		Account int64        `db:"account_id"`
		Side    string       `db:"side"`
		Amount  levee.Micros `db:"amount"`
	}
	f.db.Select(&trades, `SELECT account_id, side, amount FROM trades WHERE market_id = $1 AND seq >= 3 ORDER BY seq`, m.ID)
	var postings []struct {
		Account string       `db:"account"`
		Amount  levee.Micros `db:"amount"`
	}
	f.db.Select(&postings, `SELECT account, amount FROM ledger_postings WHERE entry_seq = $1 ORDER BY idx`, last.Seq)
	if len(postings) != len(trades)+1 {
		t.Fatalf("%d postings for %d trades, want one each and the collateral's", len(postings), len(trades))
	}
	var net levee.Micros
	for i, tr := range trades {
		want := -tr.Amount
		if tr.Side == "sell" {
			want = tr.Amount
		}
		if p := postings[i]; p.Account != ledger.Cash(tr.Account) || p.Amount != want {
			t.Fatalf("posting %d: %s %s, want %s %s", i, p.Account, p.Amount, ledger.Cash(tr.Account), want)
		}
		net -= want
	}
	if p := postings[len(trades)]; p.Account != ledger.Collateral(m.ID) || p.Amount != net {
		t.Fatalf("collateral posting %s %s, want %s", p.Account, p.Amount, net)
	}
	for _, a := range append(traders, seller, gate) {
		var paid levee.Micros
		f.db.Get(&paid, `SELECT coalesce(sum(CASE side WHEN 'buy' THEN amount ELSE -amount END), 0) FROM trades WHERE account_id = $1`, a)
		if got := f.cash(a); got != levee.Units(100)-paid {
			t.Fatalf("account %d: cash %s, want %s", a, got, levee.Units(100)-paid)
		}
	}
	f.MustVerify()
}
