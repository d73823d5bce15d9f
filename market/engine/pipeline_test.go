package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"levee"
	"levee/ledger"
	"levee/market/engine"
)

// pipelineCase is the case of the tests below: with two journal
// transactions allowed in flight, x's order is the first batch on market m,
// held in its transaction once it holds its locks (AfterJournalLocked), and
// y's and z's orders are the second, priced on top of it, whose transaction
// then waits for the first's market row.
type pipelineCase struct {
	f       *fixture
	m       engine.Market
	cash    map[int64]levee.Micros // each trader's starting cash
	x, y, z int64
}

func newPipelineCase(t *testing.T) *pipelineCase {
	f := mustFixtureWith(t, engine.Options{InFlight: 2, OverlapFrom: 1})
	c := &pipelineCase{f: f, m: f.MustMarket(levee.Units(100), "yes", "no"), cash: map[int64]levee.Micros{}}
	for _, a := range []*int64{&c.x, &c.y, &c.z} {
		*a = f.MustAccount(fmt.Sprintf("t%d", len(c.cash)), levee.Units(50))
		c.cash[*a] = levee.Units(50)
	}
	return c
}

// run lines the two batches up, runs spend while x's order is priced and
// not yet written (the ledger's head is then free), lets the first
// transaction go on, and checks the answers: x's is an error of code
// wantX, y's and z's are trades.
func (c *pipelineCase) run(t *testing.T, spend func(), wantX string) {
	t.Helper()
	ctx := context.Background()
	f := c.f
	gate := make(chan struct{})
	var once sync.Once
	engine.AfterJournalLocked(f.e, func() { once.Do(func() { <-gate }) })
	hold := f.holdMarketRow(c.m.ID)
	type answer struct {
		who int64
		res engine.Result
		err error
	}
	answers := make(chan answer, 3)
	submit := func(account int64) {
		go func() {
			r, err := f.e.Submit(ctx, account, c.m.ID, buy(0, "3"), "")
			answers <- answer{account, r, err}
		}()
	}
	submit(c.x)
	MustPoll(t, "the first batch waiting for the market row", f.lockWaits(1))
	spend()
	hold.Rollback()
	MustPoll(t, "the first transaction holding its locks", f.lockWaits(0))
	submit(c.y)
	submit(c.z)
	MustPoll(t, "the second transaction waiting for the first's market row", f.lockWaits(1))
	close(gate)
	for range 3 {
		a := <-answers
		switch {
		case a.who == c.x:
			if levee.ErrorCode(a.err) != wantX {
				t.Errorf("x's order in the first batch: %+v %v; want an error %s", a.res, a.err, wantX)
			}
		case a.err != nil:
			t.Errorf("account %d: %v", a.who, a.err)
		}
	}
}

// TestPipelinedOverdraftUnwindsTheNextBatch: the first of two batches in
// flight on one market holds a buy whose cash was spent outside the engine
// meanwhile. The ledger refuses it; the second batch, priced on top of the
// first, must not commit on its own (its market row is written only at the
// seq the first leaves): it is priced again on the committed state. Only the
// overdrawn buy fails; every other order commits exactly once, and the
// market, positions, cash and ledger agree with the trades.
func TestPipelinedOverdraftUnwindsTheNextBatch(t *testing.T) {
	c := newPipelineCase(t)
	// x's cash leaves by another path that does not tell the engine.
	c.run(t, func() {
		if _, err := c.f.led.Transfer(context.Background(), ledger.Transfer{Kind: "test_spend", Ref: "test", Postings: []ledger.Posting{
			{Account: ledger.Cash(c.x), Amount: -levee.Units(49)}, {Account: ledger.Treasury, Amount: levee.Units(49)}}}); err != nil {
			t.Fatal(err)
		}
	}, levee.ECONFLICT)
	var n int
	c.f.db.Get(&n, `SELECT count(*) FROM trades WHERE market_id = $1`, c.m.ID)
	if n != 2 {
		t.Fatalf("%d trades, want 2 (y's and z's)", n)
	}
	c.f.MustAgreeWithTrades([]engine.Market{c.m}, c.cash, map[int64]levee.Micros{c.x: levee.Units(49)})
}

// TestPipelinedFailureUnwindsTheNextBatch: the first of two batches in
// flight fails in the database after it took its locks (a fault: a CHECK
// that refuses one trader's ledger postings). Its order is answered
// unavailable, safe to retry, and nothing of it is stored; the second batch,
// priced on top of it, is priced again on the committed state and commits;
// the retry commits after both. The ledger, positions and cash agree with
// the trades.
func TestPipelinedFailureUnwindsTheNextBatch(t *testing.T) {
	c := newPipelineCase(t)
	c.f.db.MustExec(fmt.Sprintf(`ALTER TABLE ledger_postings ADD CONSTRAINT fault CHECK (account <> '%s') NOT VALID`, ledger.Cash(c.x)))
	c.run(t, func() {}, levee.EUNAVAILABLE)
	c.f.db.MustExec(`ALTER TABLE ledger_postings DROP CONSTRAINT fault`)
	r, err := c.f.e.Submit(context.Background(), c.x, c.m.ID, buy(0, "3"), "")
	if err != nil || r.Seq != 3 {
		t.Fatalf("x's retry: %+v %v; want seq 3", r, err)
	}
	c.f.MustAgreeWithTrades([]engine.Market{c.m}, c.cash, nil)
}

// TestPipelinedBatchesCommitInOrder: with many traders on one market and
// two transactions in flight, every order commits once, the market's seq
// is gap-free, the answers' seqs are those stored, and the snapshot a
// trader reads right after an answer holds their trade.
func TestPipelinedBatchesCommitInOrder(t *testing.T) {
	ctx := context.Background()
	f := mustFixtureWith(t, engine.Options{InFlight: 2, OverlapFrom: 1})
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

// TestPipelinedSmallBatchIsWaitedFor: with two transactions allowed in
// flight, the next batch goes beside the one in flight only if that one
// carries at least Options.OverlapFrom orders; a smaller one is waited for,
// as with one in flight. x's order (a batch of one) is held in its
// transaction once it holds its locks, and y's order comes meanwhile: with
// OverlapFrom 1 its transaction starts and waits for x's market row; with 2
// it does not start until x's commits. Both commit, in order, either way.
func TestPipelinedSmallBatchIsWaitedFor(t *testing.T) {
	for _, c := range []struct {
		overlapFrom int
		overlapped  bool
	}{{1, true}, {2, false}} {
		t.Run(fmt.Sprintf("from-%d", c.overlapFrom), func(t *testing.T) {
			ctx := context.Background()
			f := mustFixtureWith(t, engine.Options{InFlight: 2, OverlapFrom: c.overlapFrom})
			m := f.MustMarket(levee.Units(100), "yes", "no")
			x, y := f.MustAccount("x", levee.Units(50)), f.MustAccount("y", levee.Units(50))
			held, gate := make(chan struct{}), make(chan struct{})
			var once sync.Once
			engine.AfterJournalLocked(f.e, func() { once.Do(func() { close(held); <-gate }) })
			seqs := make(chan int64, 2)
			submit := func(a int64) {
				go func() {
					r, err := f.e.Submit(ctx, a, m.ID, buy(0, "3"), "")
					if err != nil {
						t.Errorf("account %d: %v", a, err)
					}
					seqs <- r.Seq
				}()
			}
			submit(x)
			<-held
			submit(y)
			overlapped := false
			for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline) && !overlapped; time.Sleep(5 * time.Millisecond) {
				overlapped = f.lockWaits(1)()
			}
			if overlapped != c.overlapped {
				t.Errorf("y's batch went beside x's batch of one: %v, want %v", overlapped, c.overlapped)
			}
			close(gate)
			if a, b := <-seqs, <-seqs; a+b != 3 {
				t.Errorf("answered seqs %d and %d, want 1 and 2", a, b)
			}
			f.MustAgreeWithTrades([]engine.Market{m}, map[int64]levee.Micros{x: levee.Units(50), y: levee.Units(50)}, nil)
		})
	}
}

// TestPipelinedBatchStaysBounded: while a batch too small to overlap is
// held in its transaction, orders keep coming. The book takes no more of
// them once Options.MaxBatch are priced: every commit carries fewer than
// twice MaxBatch orders, and every order commits once.
func TestPipelinedBatchStaysBounded(t *testing.T) {
	const maxBatch, orders = 4, 20
	var largest atomic.Int64
	f := mustFixtureWith(t, engine.Options{InFlight: 2, OverlapFrom: 2, MaxBatch: maxBatch, OnCommit: func(n int, _ time.Duration, _ error) {
		for m := largest.Load(); int64(n) > m && !largest.CompareAndSwap(m, int64(n)); m = largest.Load() {
		}
	}})
	ctx := context.Background()
	m := f.MustMarket(levee.Units(100), "yes", "no")
	cash := map[int64]levee.Micros{}
	ids := make([]int64, orders+1)
	for i := range ids {
		ids[i] = f.MustAccount(fmt.Sprintf("t%d", i), levee.Units(20))
		cash[ids[i]] = levee.Units(20)
	}
	held, gate := make(chan struct{}), make(chan struct{})
	var once sync.Once
	engine.AfterJournalLocked(f.e, func() { once.Do(func() { close(held); <-gate }) })
	errs := make(chan error, len(ids))
	submit := func(a int64) {
		go func() {
			_, err := f.e.Submit(ctx, a, m.ID, buy(0, "1"), "")
			errs <- err
		}()
	}
	submit(ids[0])
	<-held
	for _, a := range ids[1:] {
		submit(a)
	}
	time.Sleep(300 * time.Millisecond) // the book takes what it will of them
	close(gate)
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if l := largest.Load(); l >= 2*maxBatch {
		t.Errorf("a commit carried %d orders; MaxBatch %d", l, maxBatch)
	}
	f.MustAgreeWithTrades([]engine.Market{m}, cash, nil)
}
