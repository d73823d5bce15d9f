package engine_test

import (
	"context"
	"testing"
	"time"

	"levee"
	"levee/ledger"
	"levee/market/engine"
)

// TestJournalConnection: the journal commits on a connection of its own
// that always uses generic plans (pg_stat_activity names it), other
// connections keep PostgreSQL's default, and when that connection is killed
// the next commit takes a new one: an order may be refused as unavailable
// (safe to retry) once, and nothing is lost or doubled.
func TestJournalConnection(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(100))
	m := f.MustMarket(levee.Units(10), "yes", "no")
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := f.db.GetContext(ctx, &pid, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'levee-journal'`); err != nil {
		t.Fatalf("no journal connection: %v", err)
	}
	var mode string
	f.db.GetContext(ctx, &mode, `SHOW plan_cache_mode`)
	if mode != "auto" {
		t.Fatalf("a pool connection has plan_cache_mode %q", mode)
	}
	if _, err := f.db.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	placed := 1
	for try := 0; try < 3; try++ {
		_, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), "")
		if err == nil {
			placed++
			break
		}
		if levee.ErrorCode(err) != levee.EUNAVAILABLE {
			t.Fatalf("order after the journal's connection died: %v", err)
		}
	}
	if placed != 2 {
		t.Fatal("no order went through after the journal's connection died")
	}
	var newPID, trades int
	f.db.GetContext(ctx, &newPID, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'levee-journal'`)
	f.db.GetContext(ctx, &trades, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
	if newPID == 0 || newPID == pid || trades != placed {
		t.Fatalf("journal connection %d (was %d), %d trades for %d orders acknowledged", newPID, pid, trades, placed)
	}
	f.MustVerify()
}

// TestJournalCommitTimesOut: a commit that waits past Options.DBTimeout
// (here on a market row another transaction holds) is answered unavailable,
// safe to retry, and commits nothing; the journal's connection, which the
// driver closes when a query's deadline passes, is replaced, and the retry
// goes through once the row is free: one trade, the cash moved once. On
// every way the journal commits.
func TestJournalCommitTimesOut(t *testing.T) {
	for _, jc := range journals {
		t.Run(jc.name, func(t *testing.T) {
			ctx := context.Background()
			opts := jc.opts
			opts.DBTimeout = 300 * time.Millisecond
			f := mustFixtureWith(t, opts)
			alice := f.MustAccount("alice", levee.Units(100))
			m := f.MustMarket(levee.Units(10), "yes", "no")
			hold := f.holdMarketRow(m.ID)
			_, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), "k1")
			hold.Rollback()
			if levee.ErrorCode(err) != levee.EUNAVAILABLE {
				t.Fatalf("an order whose commit timed out: %v, want unavailable", err)
			}
			var trades int
			f.db.GetContext(ctx, &trades, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
			if trades != 0 {
				t.Fatalf("%d trades stored for an order answered unavailable", trades)
			}
			var res engine.Result
			for try := 0; ; try++ {
				if res, err = f.e.Submit(ctx, alice, m.ID, buy(0, "1"), "k1"); err == nil || try == 3 {
					break
				}
			}
			if err != nil {
				t.Fatalf("the retry after the timeout: %v", err)
			}
			f.db.GetContext(ctx, &trades, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
			cash := f.balance(ledger.Cash(alice))
			if trades != 1 || res.Cost <= 0 || cash != levee.Units(100)-res.Cost {
				t.Fatalf("%d trades and cash %s after one order that cost %s", trades, cash, res.Cost)
			}
			f.MustVerify()
		})
	}
}
