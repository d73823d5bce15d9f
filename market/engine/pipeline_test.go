package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"levee"
	"levee/ledger"
	"levee/market/engine"
)

// inFlightAnswer is an order's answer in these tests.
type inFlightAnswer struct {
	who string
	res engine.Result
	err error
}

// twoInFlight starts the case of these tests: with two journal transactions
// allowed in flight, the first batch (the orders of first) is held in its
// transaction once it holds its locks (AfterJournalLocked), and the book
// hands over a second batch (second's orders), priced on top of the first,
// whose transaction then waits for the first's market row. spend runs while
// the first batch is priced and not yet written (the ledger's head is then
// free). Each order's answer arrives on the returned channel; release lets
// the first transaction go on.
func twoInFlight(t *testing.T, f *fixture, m engine.Market, first, second map[string]int64, spend func()) (answers chan inFlightAnswer, release func()) {
	t.Helper()
	ctx := context.Background()
	gate := make(chan struct{})
	var once sync.Once
	engine.AfterJournalLocked(f.e, func() { once.Do(func() { <-gate }) })
	hold := f.holdMarketRow(m.ID)
	answers = make(chan inFlightAnswer, len(first)+len(second))
	submit := func(who string, account int64) {
		go func() {
			r, err := f.e.Submit(ctx, account, m.ID, buy(0, "3"), "")
			answers <- inFlightAnswer{who, r, err}
		}()
	}
	for who, a := range first {
		submit(who, a)
	}
	MustPoll(t, "the first batch waiting for the market row", f.lockWaits(1))
	spend()
	hold.Rollback()
	MustPoll(t, "the first transaction holding its locks", f.lockWaits(0))
	for who, a := range second {
		submit(who, a)
	}
	MustPoll(t, "the second transaction waiting for the first's market row", f.lockWaits(1))
	return answers, func() { close(gate) }
}

// TestPipelinedOverdraftUnwindsTheNextBatch: the first of two batches in
// flight on one market holds a buy whose cash was spent outside the engine
// meanwhile. The ledger refuses it; the second batch, priced on top of the
// first, must not commit on its own (its market row is written only at the
// seq the first leaves): it is priced again, with the first batch's other
// orders, on the committed state. Only the overdrawn buy fails; every other
// order commits exactly once, and the market, positions, cash and ledger
// agree with the trades.
func TestPipelinedOverdraftUnwindsTheNextBatch(t *testing.T) {
	ctx := context.Background()
	f := mustFixtureWith(t, engine.Options{InFlight: 2})
	m := f.MustMarket(levee.Units(100), "yes", "no")
	cash := map[int64]levee.Micros{}
	account := func(name string) int64 {
		a := f.MustAccount(name, levee.Units(50))
		cash[a] = levee.Units(50)
		return a
	}
	x := account("x")
	first := map[string]int64{"x": x}
	second := map[string]int64{"y": account("y"), "z": account("z")}
	// x's buy is priced and its cash reserved; x's cash leaves by another
	// path that does not tell the engine.
	answers, release := twoInFlight(t, f, m, first, second, func() {
		if _, err := f.led.Transfer(ctx, ledger.Transfer{Kind: "test_spend", Ref: "test", Postings: []ledger.Posting{
			{Account: ledger.Cash(x), Amount: -levee.Units(49)}, {Account: ledger.Treasury, Amount: levee.Units(49)}}}); err != nil {
			t.Fatal(err)
		}
	})
	release()
	for range len(first) + len(second) {
		a := <-answers
		switch {
		case a.who == "x":
			if levee.ErrorCode(a.err) != levee.ECONFLICT {
				t.Errorf("x's overdrawn buy: %+v %v; want a conflict", a.res, a.err)
			}
		case a.err != nil:
			t.Errorf("%s: %v", a.who, a.err)
		}
	}
	var n int
	f.db.Get(&n, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
	if n != len(second) {
		t.Fatalf("%d trades, want %d (y's and z's)", n, len(second))
	}
	f.MustAgreeWithTrades([]engine.Market{m}, cash, map[int64]levee.Micros{x: levee.Units(49)})
}

// TestPipelinedFailureUnwindsTheNextBatch: the first of two batches in
// flight fails in the database after it took its locks (a fault: a CHECK
// that refuses one trader's ledger postings). Its orders are answered unavailable, safe to retry, and nothing
// of them is stored; the second batch, priced on top of it, is priced again
// on the committed state and commits; a later order sees both answers'
// state. The ledger, positions and cash agree with the trades.
func TestPipelinedFailureUnwindsTheNextBatch(t *testing.T) {
	ctx := context.Background()
	f := mustFixtureWith(t, engine.Options{InFlight: 2})
	m := f.MustMarket(levee.Units(100), "yes", "no")
	cash := map[int64]levee.Micros{}
	account := func(name string) int64 {
		a := f.MustAccount(name, levee.Units(50))
		cash[a] = levee.Units(50)
		return a
	}
	x := account("x")
	f.db.MustExec(fmt.Sprintf(`ALTER TABLE ledger_postings ADD CONSTRAINT fault CHECK (account <> '%s') NOT VALID`, ledger.Cash(x)))
	first := map[string]int64{"x": x}
	second := map[string]int64{"y": account("y"), "z": account("z")}
	answers, release := twoInFlight(t, f, m, first, second, func() {})
	release()
	for range len(first) + len(second) {
		a := <-answers
		switch {
		case a.who == "x":
			if levee.ErrorCode(a.err) != levee.EUNAVAILABLE {
				t.Errorf("x's order in the failed commit: %+v %v; want unavailable", a.res, a.err)
			}
		case a.err != nil:
			t.Errorf("%s: %v", a.who, a.err)
		}
	}
	f.db.MustExec(`ALTER TABLE ledger_postings DROP CONSTRAINT fault`)
	r, err := f.e.Submit(ctx, x, m.ID, buy(0, "3"), "")
	if err != nil || r.Seq != int64(len(second))+1 {
		t.Fatalf("x's retry: %+v %v; want seq %d", r, err, len(second)+1)
	}
	f.MustAgreeWithTrades([]engine.Market{m}, cash, nil)
}

// TestPipelinedBatchesCommitInOrder: with many traders on one market and
// two transactions in flight, every order commits once, the market's seq
// is gap-free, the answers' seqs are those stored, and the snapshot a
// trader reads right after an answer holds their trade.
func TestPipelinedBatchesCommitInOrder(t *testing.T) {
	ctx := context.Background()
	f := mustFixtureWith(t, engine.Options{InFlight: 2})
	m := f.MustMarket(levee.Units(100), "yes", "no")
	const traders, orders = 16, 25
	cash := map[int64]levee.Micros{}
	ids := make([]int64, traders)
	for i := range ids {
		ids[i] = f.MustAccount(fmt.Sprintf("t%d", i), levee.Units(100))
		cash[ids[i]] = levee.Units(100)
	}
	errs := make(chan error, traders)
	for i, a := range ids {
		go func() {
			for k := range orders {
				o := buy(k%2, "0.5")
				if k%5 == 4 {
					o = sell(0, "0.5")
				}
				r, err := f.e.Submit(ctx, a, m.ID, o, "")
				if err != nil {
					if levee.ErrorCode(err) == levee.ECONFLICT { // nothing to sell yet
						continue
					}
					errs <- fmt.Errorf("trader %d order %d: %w", i, k, err)
					return
				}
				s, err := f.e.Snapshot(ctx, m.ID)
				if err != nil || s.Market.Seq < r.Seq {
					errs <- fmt.Errorf("trader %d: snapshot at seq %d after an answer at %d (%v)", i, s.Market.Seq, r.Seq, err)
					return
				}
				var stored int64
				if err := f.db.Get(&stored, `SELECT count(*) FROM trades WHERE market_id = $1 AND seq = $2 AND account_id = $3`, m.ID, r.Seq, a); err != nil || stored != 1 {
					errs <- fmt.Errorf("trader %d: answer at seq %d not stored as theirs (%d, %v)", i, r.Seq, stored, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range traders {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	f.MustAgreeWithTrades([]engine.Market{m}, cash, nil)
}
