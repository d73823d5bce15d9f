package engine_test

import (
	"context"
	"fmt"
	"testing"

	"levee"
	"levee/market/engine"
)

// TestRetryUnknownToMemoryIsAnsweredOnce: after a restart the engine has no
// memory of a keyed order, so its retry is priced as new, in one batch with
// other traders' new orders on the same market, and order_keys refuses the
// key at commit. The retry must get the original answer and trade nothing;
// the other orders must commit, priced without it (the market's q and seq,
// the positions and the cash agree with the trades), and the ledger
// verifies. A second retry in the same batch under another key of the same
// trader must not be confused with the first.
func TestRetryUnknownToMemoryIsAnsweredOnce(t *testing.T) {
	for _, j := range waitingJournals {
		t.Run(j.name, func(t *testing.T) { retryUnknownToMemory(t, j.opts) })
	}
}

func retryUnknownToMemory(t *testing.T, opts engine.Options) {
	ctx := context.Background()
	f := mustFixtureWith(t, opts)
	m := f.MustMarket(levee.Units(100), "yes", "no")
	alice := f.MustAccount("alice", levee.Units(1000))
	others := make([]int64, 6)
	start := map[int64]levee.Micros{alice: levee.Units(1000)}
	for i := range others {
		others[i] = f.MustAccount(fmt.Sprintf("t%d", i), levee.Units(1000))
		start[others[i]] = levee.Units(1000)
	}
	first, err := f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "once")
	if err != nil {
		t.Fatal(err)
	}
	f.restart() // nothing of "once" in memory now

	// Hold the book on a first order (its commit waits for the market row),
	// so that what follows queues up and is priced as one batch.
	hold := f.holdMarketRow(m.ID)
	type answer struct {
		who string
		res engine.Result
		err error
	}
	answers := make(chan answer, 2+len(others))
	submit := func(who string, account int64, key string, shares string) {
		go func() {
			r, err := f.e.Submit(ctx, account, m.ID, buy(0, shares), key)
			answers <- answer{who, r, err}
		}()
	}
	submit("gate", others[0], "", "1")
	MustPoll(t, "the gate order at the journal", f.lockWaits(1))
	queued := 0
	for i, o := range others[1:] {
		submit(fmt.Sprintf("new %d", i), o, fmt.Sprintf("new-%d", i), "2")
		queued++
		if i == 1 {
			submit("retry", alice, "once", "10")
			queued++
		}
	}
	submit("alice's new order", alice, "twice", "1")
	queued++
	MustPoll(t, "the batch queued", func() bool { return engine.QueuedOrders(f.e, m.ID) == queued })
	hold.Rollback()

	trades := 0
	for range 1 + queued {
		a := <-answers
		switch {
		case a.err != nil:
			t.Errorf("%s: %v", a.who, a.err)
		case a.who == "retry":
			if a.res.Seq != first.Seq || a.res.Cost != first.Cost {
				t.Errorf("retry answered %+v, want the first answer %+v", a.res, first)
			}
		default:
			trades++
		}
	}
	var n int
	f.db.Get(&n, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
	if n != 1+trades {
		t.Fatalf("%d trades, want %d (the first and the new orders, not the retry)", n, 1+trades)
	}
	f.MustAgreeWithTrades([]engine.Market{m}, start, nil)
	f.MustVerify()
}
