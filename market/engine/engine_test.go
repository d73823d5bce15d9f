package engine_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"levee"
	"levee/accounts"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/migrations/dbtest"
)

type fixture struct {
	t   *testing.T
	db  *sqlx.DB
	e   *engine.Engine
	acc *accounts.Service
	led *ledger.Ledger
	// opts start the engine (and restart it).
	opts engine.Options
}

// MustFixture gives a test a database with a funded treasury, a district and
// a running engine.
func MustFixture(t *testing.T) *fixture { return mustFixtureWith(t, engine.Options{}) }

// journals are the ways the journal commits a group, for the tests of what
// happens when a commit is refused (an overdraft, a stored key, a fenced
// market): in a transaction of two round trips (the default), of four
// (Options.FourTrips), in one statement (ledger_append,
// Options.OneStatementFrom), and with two transactions in flight
// (Options.InFlight) of two round trips each and of four.
var journals = []journalCase{{"two-trips", engine.Options{}}, {"four-trips", engine.Options{FourTrips: true}}, {"one-statement", engine.Options{OneStatementFrom: 1}},
	{"pipelined", engine.Options{InFlight: 2, OverlapFrom: 1}}, {"pipelined-four-trips", engine.Options{InFlight: 2, OverlapFrom: 1, FourTrips: true}}}

type journalCase struct {
	name string
	opts engine.Options
}

// waitingJournals are the journals whose books wait for each commit before
// they take the next orders from their queue: the tests that line orders up
// in a book's queue behind a commit, to have them priced as one batch, need
// one. With two transactions in flight a book takes its orders as they come
// (pipeline_test.go has those tests' cases with two batches in flight).
var waitingJournals = journals[:3]

// inFlight runs a test with one journal transaction in flight (two round
// trips and four) and with two (every batch overlapped; two round trips
// and four).
var inFlight = []journalCase{journals[0], journals[1], journals[3], journals[4]}

// mustFixtureWith is MustFixture with an engine started with opts.
func mustFixtureWith(t *testing.T, opts engine.Options) *fixture {
	t.Helper()
	db := dbtest.New(t)
	f := &fixture{t: t, db: db, acc: accounts.New(db), led: ledger.New(db), opts: opts}
	ctx := context.Background()
	if _, err := f.acc.CreateDistrict(ctx, 0, "north"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.led.Transfer(ctx, ledger.Transfer{Kind: "treasury_funding", Ref: "test", Postings: []ledger.Posting{
		{Account: ledger.Issuance, Amount: -levee.Units(1_000_000)}, {Account: ledger.Treasury, Amount: levee.Units(1_000_000)}}}); err != nil {
		t.Fatal(err)
	}
	f.start()
	return f
}

func (f *fixture) start() {
	f.e = engine.New(f.db, f.opts)
	f.t.Cleanup(f.e.Close)
}

func (f *fixture) restart() {
	f.e.Close()
	f.start()
}

func (f *fixture) MustAccount(name string, cash levee.Micros) int64 {
	f.t.Helper()
	a, _, err := f.acc.CreateAccount(context.Background(), 0, accounts.NewAccount{Name: name, Roles: []string{"resident"}, District: "north", Credit: cash})
	if err != nil {
		f.t.Fatal(err)
	}
	return a.ID
}

// MustAccounts makes n traders, t0 to t(n-1), each with cash.
func (f *fixture) MustAccounts(n int, cash levee.Micros) []int64 {
	f.t.Helper()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = f.MustAccount(fmt.Sprintf("t%d", i), cash)
	}
	return ids
}

func (f *fixture) MustMarket(b levee.Micros, outcomes ...string) engine.Market {
	f.t.Helper()
	m, err := f.e.CreateMarket(context.Background(), engine.NewMarket{Question: "Will the pump station be fixed?", Outcomes: outcomes,
		Liquidity: b, ClosesAt: time.Now().Add(time.Hour)})
	if err != nil {
		f.t.Fatal(err)
	}
	return m
}

func (f *fixture) cash(account int64) levee.Micros {
	f.t.Helper()
	a, err := f.acc.Get(context.Background(), account)
	if err != nil {
		f.t.Fatal(err)
	}
	return a.Cash
}

func (f *fixture) balance(key string) levee.Micros {
	f.t.Helper()
	b, err := f.led.Balance(context.Background(), key)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

func (f *fixture) MustVerify() {
	f.t.Helper()
	r, err := f.led.Verify(context.Background())
	if err != nil || !r.OK {
		f.t.Fatalf("ledger does not verify: %+v %v", r, err)
	}
}

func buy(outcome int, shares string) market.Order {
	return market.Order{Outcome: outcome, Side: market.Buy, Shares: levee.MustMicros(shares)}
}

func sell(outcome int, shares string) market.Order {
	return market.Order{Outcome: outcome, Side: market.Sell, Shares: levee.MustMicros(shares)}
}

func TestOrdersMatchThePureMathsAndMoveMoney(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	if f.balance(fmt.Sprintf("market:%d:collateral", m.ID)) != m.Subsidy || m.Subsidy != levee.MustMicros("69.314719") {
		t.Fatalf("subsidy %s (want b ln 2 rounded up = 69.314719)", m.Subsidy)
	}
	ref, _ := market.NewState(m.Liquidity, m.Q)

	orders := []market.Order{buy(0, "10"), {Outcome: 0, Side: market.Buy, Amount: levee.Units(25)}, sell(0, "5"), {Outcome: 0, Side: market.Sell, All: true}, buy(1, "3")}
	var cash levee.Micros = levee.Units(1000)
	var pos levee.Micros
	for i, o := range orders {
		want, err := ref.Quote(o, pos, cash)
		if err != nil {
			t.Fatalf("order %d: reference: %v", i, err)
		}
		got, err := f.e.Submit(ctx, alice, m.ID, o, "")
		if err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
		if got.Shares != want.Shares || got.Cost != want.Cost || got.Proceeds != want.Proceeds || got.Seq != int64(i+1) {
			t.Fatalf("order %d: got %+v want %+v", i, got, want)
		}
		for j := range want.PricesAfter {
			if got.Prices[j] != want.PricesAfter[j] {
				t.Fatalf("order %d: prices %v want %v", i, got.Prices, want.PricesAfter)
			}
		}
		ref.Apply(want)
		cash += want.Proceeds - want.Cost
		if o.Outcome == 0 {
			if o.Side == market.Buy {
				pos += want.Shares
			} else {
				pos -= want.Shares
			}
		}
	}
	if pos != 0 {
		t.Fatalf("sell all left %s shares", pos)
	}
	if got := f.cash(alice); got != cash {
		t.Fatalf("cash %s, want %s", got, cash)
	}
	collateral := f.balance(fmt.Sprintf("market:%d:collateral", m.ID))
	if collateral != m.Subsidy+levee.Units(1000)-cash {
		t.Fatalf("collateral %s, want subsidy + net paid", collateral)
	}
	snap, _ := f.e.Snapshot(ctx, m.ID)
	if snap.Market.Seq != int64(len(orders)) {
		t.Fatalf("seq %d", snap.Market.Seq)
	}
	f.MustVerify()

	// Errors are coded and change nothing.
	for _, tc := range []struct {
		o    market.Order
		code string
	}{
		{sell(0, "1"), levee.ECONFLICT},                              // no short selling
		{buy(0, "100000"), levee.ECONFLICT},                          // more than her cash
		{buy(2, "1"), levee.EINVALID},                                // no such outcome
		{market.Order{Outcome: 0, Side: market.Buy}, levee.EINVALID}, // nothing to buy
	} {
		if _, err := f.e.Submit(ctx, alice, m.ID, tc.o, ""); levee.ErrorCode(err) != tc.code {
			t.Fatalf("%+v: got %v, want %s", tc.o, err, tc.code)
		}
	}
	if _, err := f.e.Submit(ctx, alice, 999999, buy(0, "1"), ""); levee.ErrorCode(err) != levee.ENOTFOUND {
		t.Fatalf("unknown market: %v", err)
	}
	if got := f.cash(alice); got != cash {
		t.Fatalf("a refused order moved cash: %s", got)
	}
}

func TestQuoteEqualsOrder(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(50), "on time", "late", "abandoned")
	for _, o := range []market.Order{
		buy(1, "7.5"),
		{Outcome: 0, Side: market.Buy, Amount: levee.MustMicros("12.34")},
		{Outcome: 2, Side: market.Buy, LimitPrice: levee.MustMicros("0.5")},
		sell(1, "2"),
	} {
		q, _, err := f.e.Quote(ctx, alice, m.ID, o)
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.e.Submit(ctx, alice, m.ID, o, "")
		if err != nil {
			t.Fatal(err)
		}
		if q.Shares != r.Shares || q.Cost != r.Cost || q.Proceeds != r.Proceeds {
			t.Fatalf("quote %+v, order %+v", q, r)
		}
	}
}

// TestTradeRowsHoldWhatWasAcknowledged: on every journal, each trade row
// holds the shares, amount, prices and time its order was answered with
// (the journal writes them as array literals of its own: timeArray,
// numericArrays, levee.MicrosArray).
func TestTradeRowsHoldWhatWasAcknowledged(t *testing.T) {
	for _, j := range journals {
		t.Run(j.name, func(t *testing.T) {
			ctx := context.Background()
			f := mustFixtureWith(t, j.opts)
			alice := f.MustAccount("alice", levee.Units(1000))
			m := f.MustMarket(levee.Units(50), "on time", "late", "abandoned")
			for _, o := range []market.Order{buy(0, "7.5"), buy(2, "0.000001"), {Outcome: 1, Side: market.Buy, Amount: levee.MustMicros("12.34")}, sell(0, "2.25")} {
				r, err := f.e.Submit(ctx, alice, m.ID, o, "")
				if err != nil {
					t.Fatal(err)
				}
				var row struct {
					Shares levee.Micros  `db:"shares"`
					Amount levee.Micros  `db:"amount"`
					Prices market.Prices `db:"prices"`
					At     time.Time     `db:"at"`
				}
				if err := f.db.Get(&row, `SELECT shares, amount, prices, at FROM trades WHERE market_id = $1 AND seq = $2`, m.ID, r.Seq); err != nil {
					t.Fatal(err)
				}
				amount := r.Cost
				if r.Side == market.Sell {
					amount = r.Proceeds
				}
				if row.Shares != r.Shares || row.Amount != amount || !slices.Equal(row.Prices, r.Prices) || !row.At.Equal(r.At) {
					t.Fatalf("stored %+v, acknowledged %+v", row, r)
				}
			}
		})
	}
}

// doneCounting counts the calls of Done.
type doneCounting struct {
	context.Context
	calls atomic.Int64
}

func (c *doneCounting) Done() <-chan struct{} {
	c.calls.Add(1)
	return c.Context.Done()
}

// TestOrderTakenAtOnceDoesNotWaitOnItsContext: an order its book has room
// for never asks its context for Done, so a request's deadline never makes
// its timer for it (web.requestDeadline).
func TestOrderTakenAtOnceDoesNotWaitOnItsContext(t *testing.T) {
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(50), "yes", "no")
	if _, err := f.e.Submit(context.Background(), alice, m.ID, buy(0, "1"), ""); err != nil { // loads the book
		t.Fatal(err)
	}
	ctx := &doneCounting{Context: context.Background()}
	for range 10 {
		if _, err := f.e.Submit(ctx, alice, m.ID, buy(1, "1"), ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := ctx.calls.Load(); n != 0 {
		t.Fatalf("10 orders asked their context for Done %d times", n)
	}
}

func TestIdempotencyKey(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	first, err := f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "k1")
	if err != nil {
		t.Fatal(err)
	}
	cash := f.cash(alice)
	again, err := f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "k1")
	if err != nil || again.Seq != first.Seq || again.Cost != first.Cost {
		t.Fatalf("retry: %+v %v, first %+v", again, err, first)
	}
	f.restart() // the key survives a restart: it is in the database
	again, err = f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "k1")
	if err != nil || again.Seq != first.Seq {
		t.Fatalf("retry after restart: %+v %v", again, err)
	}
	if _, err := f.e.Submit(ctx, alice, m.ID, sell(0, "10"), "k1"); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("key reused for another order: %v", err)
	}
	if f.cash(alice) != cash {
		t.Fatal("a retry moved money")
	}

	// Twenty concurrent retries of a new order trade once.
	var wg sync.WaitGroup
	seqs := make([]int64, 20)
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.e.Submit(ctx, alice, m.ID, buy(1, "1"), "k2")
			if err != nil {
				t.Error(err)
			}
			seqs[i] = r.Seq
		}()
	}
	wg.Wait()
	for _, s := range seqs {
		if s != seqs[0] {
			t.Fatalf("concurrent retries traded more than once: %v", seqs)
		}
	}
	var n int
	f.db.Get(&n, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
	if n != 2 {
		t.Fatalf("%d trades, want 2", n)
	}
}

// TestIdempotencyKeyIsTheAccounts: a key belongs to the account that sent
// it. Two accounts that use the same key, one after the other and at the
// same time, each trade once and each retry returns the sender's own trade:
// no one can collect or block another's order by guessing its key.
func TestIdempotencyKeyIsTheAccounts(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	bob := f.MustAccount("bob", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	mine, err := f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "shared")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := f.e.Submit(ctx, bob, m.ID, buy(0, "10"), "shared")
	if err != nil || theirs.Seq == mine.Seq {
		t.Fatalf("bob under alice's key: %+v %v; alice's trade %d", theirs, err, mine.Seq)
	}
	// The same order at once from both, under a fresh key, many times each.
	seqs := map[int64][]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 10 {
		for _, who := range []int64{alice, bob} {
			wg.Go(func() {
				r, err := f.e.Submit(ctx, who, m.ID, buy(1, "1"), "race")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seqs[who] = append(seqs[who], r.Seq)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	if a, b := seqs[alice], seqs[bob]; len(a) != 10 || len(b) != 10 || slices.Min(a) != slices.Max(a) || slices.Min(b) != slices.Max(b) || a[0] == b[0] {
		t.Fatalf("alice's answers %v, bob's %v: want one trade each, all of each one's retries answered with it", a, b)
	}
	for who, want := range map[int64]int64{alice: mine.Seq, bob: theirs.Seq} {
		if r, err := f.e.Submit(ctx, who, m.ID, buy(0, "10"), "shared"); err != nil || r.Seq != want {
			t.Fatalf("account %d's retry: %+v %v, want its trade %d", who, r, err, want)
		}
	}
	var n int
	f.db.Get(&n, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
	if n != 4 {
		t.Fatalf("%d trades, want 4 (each key once per account)", n)
	}
}

// TestIdempotencyKeyRetention: a key is found for KeyRetention after its
// order, across restarts and from another market (a conflict), and pruning
// removes only keys past the retention; a retry after that is a new order,
// as the API reference says.
func TestIdempotencyKeyRetention(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	other := f.MustMarket(levee.Units(100), "yes", "no")
	first, err := f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "keep")
	if err != nil {
		t.Fatal(err)
	}
	var keys int
	if err := f.db.Get(&keys, `SELECT count(*) FROM order_keys WHERE account_id = $1 AND key = 'keep' AND market_id = $2 AND seq = $3`, alice, m.ID, first.Seq); err != nil || keys != 1 {
		t.Fatalf("order_keys rows for the order: %d %v", keys, err)
	}
	// Nothing within the retention is pruned.
	if n, err := engine.PruneKeys(ctx, f.db, time.Now().Add(-engine.KeyRetention)); err != nil || n != 0 {
		t.Fatalf("pruned %d keys within the retention (%v)", n, err)
	}
	f.restart()
	again, err := f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "keep")
	if err != nil || again.Seq != first.Seq || again.Cost != first.Cost {
		t.Fatalf("retry within the retention: %+v %v, first %+v", again, err, first)
	}
	if _, err := f.e.Submit(ctx, alice, other.ID, buy(0, "10"), "keep"); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("the key reused in another market: %v, want a conflict", err)
	}
	// Past the retention the key is forgotten: the same request trades anew
	// (after a restart, so that no memory of it is left either).
	if n, err := engine.PruneKeys(ctx, f.db, first.At.Add(time.Microsecond)); err != nil || n != 1 {
		t.Fatalf("pruned %d keys past the retention (%v), want 1", n, err)
	}
	f.restart()
	later, err := f.e.Submit(ctx, alice, m.ID, buy(0, "10"), "keep")
	if err != nil || later.Seq == first.Seq {
		t.Fatalf("retry past the retention: %+v %v, want a new trade", later, err)
	}
	var trades int
	f.db.Get(&trades, `SELECT count(*) FROM trades WHERE market_id = $1 AND account_id = $2 AND idempotency_key = 'keep'`, m.ID, alice)
	if trades != 2 {
		t.Fatalf("%d keyed trades, want 2 (the key stays on each trade for audits)", trades)
	}
	f.MustVerify()
}

// TestRandomFlowAgainstReference drives several markets from many goroutines
// and checks the durable result against a replay of the committed trades
// through the pure maths, one trade at a time.
func TestRandomFlowAgainstReference(t *testing.T) {
	for _, c := range inFlight {
		t.Run(c.name, func(t *testing.T) { randomFlowAgainstReference(t, c.opts) })
	}
}

func randomFlowAgainstReference(t *testing.T, opts engine.Options) {
	ctx := context.Background()
	f := mustFixtureWith(t, opts)
	const traders, marketsN, ordersPer = 8, 3, 60
	ids := make([]int64, traders)
	for i := range ids {
		ids[i] = f.MustAccount(fmt.Sprintf("t%d", i), levee.Units(200))
	}
	ms := make([]engine.Market, marketsN)
	for i := range ms {
		ms[i] = f.MustMarket(levee.Units(int64(20+30*i)), "a", "b", "c")
	}
	var wg sync.WaitGroup
	acked := make(chan engine.Result, traders*ordersPer)
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 7))
			for k := 0; k < ordersPer; k++ {
				m := ms[r.IntN(marketsN)]
				o := market.Order{Outcome: r.IntN(3), Side: market.Side(r.IntN(2))}
				switch r.IntN(4) {
				case 0:
					o.Amount = levee.Micros(r.Int64N(int64(levee.Units(20))) + 1)
				case 1:
					o.All = o.Side == market.Sell
					if !o.All {
						o.Shares = levee.Micros(r.Int64N(int64(levee.Units(10))) + 1)
					}
				default:
					o.Shares = levee.Micros(r.Int64N(int64(levee.Units(10))) + 1)
				}
				if o.Side == market.Sell {
					o.Amount = 0
				}
				res, err := f.e.Submit(ctx, id, m.ID, o, "")
				if err == nil {
					acked <- res
				} else if c := levee.ErrorCode(err); c != levee.ECONFLICT && c != levee.EINVALID {
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	close(acked)
	nAcked := 0
	for range acked {
		nAcked++
	}
	f.restart()

	// Replay each market's trades in seq order through the pure maths.
	total := 0
	for _, m := range ms {
		var ts []market.Trade
		if err := f.db.Select(&ts, `SELECT market_id, seq, account_id, outcome, side, shares, amount, prices, at, idempotency_key FROM trades WHERE market_id = $1 ORDER BY seq`, m.ID); err != nil {
			t.Fatal(err)
		}
		total += len(ts)
		ref, _ := market.NewState(m.Liquidity, m.Q)
		for i, tr := range ts {
			if tr.Seq != int64(i+1) {
				t.Fatalf("market %d: seq %d at position %d (gap)", m.ID, tr.Seq, i)
			}
			side := market.Buy
			if tr.Side == market.Sell {
				side = market.Sell
			}
			want, err := ref.Quote(market.Order{Outcome: tr.Outcome, Side: side, Shares: tr.Shares}, tr.Shares, levee.MaxMoney)
			if err != nil {
				t.Fatal(err)
			}
			if (side == market.Buy && want.Cost != tr.Amount) || (side == market.Sell && want.Proceeds != tr.Amount) {
				t.Fatalf("market %d trade %d: amount %s, reference %+v", m.ID, tr.Seq, tr.Amount, want)
			}
			ref.Apply(want)
		}
		snap, err := f.e.Snapshot(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i, q := range ref.Q() {
			if snap.Market.Q[i] != q {
				t.Fatalf("market %d: stored q %v, replay %v", m.ID, snap.Market.Q, ref.Q())
			}
		}
	}
	if total != nAcked {
		t.Fatalf("%d trades stored, %d acknowledged", total, nAcked)
	}
	// Positions equal the sum of trades; cash equals credit minus net paid.
	var bad int
	f.db.Get(&bad, `SELECT count(*) FROM positions p FULL JOIN (
		SELECT market_id, account_id, outcome, sum(CASE side WHEN 'buy' THEN shares ELSE -shares END) AS s,
		       sum(CASE side WHEN 'buy' THEN amount ELSE 0 END) AS paid, sum(CASE side WHEN 'sell' THEN amount ELSE 0 END) AS received
		FROM trades GROUP BY 1, 2, 3) t USING (market_id, account_id, outcome)
		WHERE p.shares IS DISTINCT FROM t.s OR p.paid IS DISTINCT FROM t.paid OR p.received IS DISTINCT FROM t.received`)
	if bad != 0 {
		t.Fatalf("%d positions disagree with the trades", bad)
	}
	for _, id := range ids {
		var net levee.Micros
		f.db.Get(&net, `SELECT coalesce(sum(CASE side WHEN 'buy' THEN amount ELSE -amount END), 0) FROM trades WHERE account_id = $1`, id)
		if got := f.cash(id); got != levee.Units(200)-net || got < 0 {
			t.Fatalf("account %d: cash %s, want %s", id, got, levee.Units(200)-net)
		}
	}
	f.MustVerify()
	t.Logf("%d orders acknowledged across %d markets", nAcked, marketsN)
}

func TestCashIsNotSpentTwiceAcrossMarkets(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(50))
	ms := []engine.Market{f.MustMarket(levee.Units(100), "y", "n"), f.MustMarket(levee.Units(100), "y", "n")}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.e.Submit(ctx, alice, ms[i%2].ID, market.Order{Outcome: 0, Side: market.Buy, Amount: levee.Units(5)}, "")
		}()
	}
	wg.Wait()
	if c := f.cash(alice); c < 0 {
		t.Fatalf("cash went negative: %s", c)
	}
	var spent levee.Micros
	f.db.Get(&spent, `SELECT sum(amount) FROM trades WHERE account_id = $1`, alice)
	if spent > levee.Units(50) || f.cash(alice) != levee.Units(50)-spent {
		t.Fatalf("spent %s of 50, cash %s", spent, f.cash(alice))
	}
	f.MustVerify()
}

func TestResolvePaysWinnersAndBoundsTheLoss(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice, bob := f.MustAccount("alice", levee.Units(1000)), f.MustAccount("bob", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	treasury := f.balance("treasury")
	a, _ := f.e.Submit(ctx, alice, m.ID, buy(0, "80"), "")
	f.e.Submit(ctx, bob, m.ID, buy(1, "30"), "")
	f.e.Submit(ctx, bob, m.ID, buy(0, "5"), "")
	if err := f.e.Resolve(ctx, m.ID, 2); levee.ErrorCode(err) != levee.EINVALID {
		t.Fatalf("resolve to a missing outcome: %v", err)
	}
	if err := f.e.Resolve(ctx, m.ID, 0); err != nil {
		t.Fatal(err)
	}
	if got := f.cash(alice); got != levee.Units(1000)-a.Cost+levee.Units(80) {
		t.Fatalf("alice %s", got)
	}
	if f.balance(fmt.Sprintf("market:%d:collateral", m.ID)) != 0 {
		t.Fatal("collateral not emptied")
	}
	// The market maker (the treasury) lost at most the subsidy.
	if loss := treasury + m.Subsidy - f.balance("treasury"); loss > m.Subsidy {
		t.Fatalf("market maker lost %s > subsidy %s", loss, m.Subsidy)
	}
	if err := f.e.Resolve(ctx, m.ID, 1); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("second resolution: %v", err)
	}
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("order on a resolved market: %v", err)
	}
	ps, err := f.e.Positions(ctx, alice)
	if err != nil || len(ps) != 1 || ps[0].Value != levee.Units(80) || ps[0].PnL != levee.Units(80)-a.Cost {
		t.Fatalf("positions after resolution: %+v %v", ps, err)
	}
	f.MustVerify()
}

func TestVoidUnwindsExactly(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice, bob := f.MustAccount("alice", levee.Units(1000)), f.MustAccount("bob", levee.Units(1000))
	treasury := f.balance("treasury")
	m := f.MustMarket(levee.Units(30), "yes", "no")
	f.e.Submit(ctx, alice, m.ID, buy(0, "20"), "")
	f.e.Submit(ctx, bob, m.ID, buy(0, "40"), "")
	f.e.Submit(ctx, alice, m.ID, market.Order{Outcome: 0, Side: market.Sell, All: true}, "") // alice sells at a profit
	f.e.Submit(ctx, bob, m.ID, buy(1, "3"), "")
	if f.cash(alice) <= levee.Units(1000) {
		t.Fatalf("alice should be up before the void: %s", f.cash(alice))
	}
	if err := f.e.Void(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	// As if the market never happened: alice gives her profit back, bob is
	// refunded to the micro-unit, and the funder gets its subsidy back.
	for _, a := range []int64{alice, bob} {
		if got := f.cash(a); got != levee.Units(1000) {
			t.Fatalf("account %d has %s after the void, want 1000.000000", a, got)
		}
	}
	if f.balance(fmt.Sprintf("market:%d:collateral", m.ID)) != 0 {
		t.Fatal("collateral not emptied")
	}
	if got := f.balance("treasury"); got != treasury {
		t.Fatalf("treasury %s, want its subsidy back: %s", got, treasury)
	}
	f.MustVerify()
}

func TestRestartLoadsStateFromTheRow(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	for i := 0; i < 10; i++ {
		if _, err := f.e.Submit(ctx, alice, m.ID, buy(i%2, "3"), ""); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := f.e.Snapshot(ctx, m.ID)
	f.restart()
	after, err := f.e.Snapshot(ctx, m.ID)
	if err != nil || after.Market.Seq != 10 || fmt.Sprint(after.Market.Q) != fmt.Sprint(before.Market.Q) {
		t.Fatalf("after restart: %+v %v", after, err)
	}
	r, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), "")
	if err != nil || r.Seq != 11 {
		t.Fatalf("trade after restart: %+v %v", r, err)
	}
}

// TestFailedCommitIsNeverAcknowledged makes the journal's transaction fail
// and checks that the orders in it are refused, nothing of them is stored,
// and trading resumes once the fault is gone.
func TestFailedCommitIsNeverAcknowledged(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "5"), ""); err != nil {
		t.Fatal(err)
	}
	f.db.MustExec(`ALTER TABLE trades ADD CONSTRAINT fault CHECK (seq < 2)`)
	for i := 0; i < 3; i++ {
		if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "5"), ""); levee.ErrorCode(err) != levee.EUNAVAILABLE {
			t.Fatalf("order during fault: %v", err)
		}
	}
	f.db.MustExec(`ALTER TABLE trades DROP CONSTRAINT fault`)
	r, err := f.e.Submit(ctx, alice, m.ID, buy(0, "5"), "")
	if err != nil || r.Seq != 2 {
		t.Fatalf("after the fault: %+v %v", r, err)
	}
	var n int
	f.db.Get(&n, `SELECT count(*) FROM trades WHERE market_id = $1`, m.ID)
	if n != 2 {
		t.Fatalf("%d trades stored, 2 acknowledged", n)
	}
	f.MustVerify()
}

func TestClosedMarketRefusesOrders(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	if err := f.e.CloseMarket(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("order on closed market: %v", err)
	}
	if err := f.e.CloseMarket(ctx, m.ID); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("close twice: %v", err)
	}
}

func TestMarketPastItsCloseTimeIsClosed(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	f.db.MustExec(`UPDATE markets SET closes_at = now() - interval '1 second' WHERE id = $1`, m.ID)
	f.restart()
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("order after closing time: %v", err)
	}
	open, _ := f.e.List(ctx, engine.Filter{Status: "open"})
	closed, _ := f.e.List(ctx, engine.Filter{Status: "closed"})
	if len(open) != 0 || len(closed) != 1 {
		t.Fatalf("listed %d open and %d closed", len(open), len(closed))
	}
	if err := f.e.Resolve(ctx, m.ID, 1); err != nil {
		t.Fatalf("resolve after closing time: %v", err)
	}
}

func TestExtendCloseReopensTrading(t *testing.T) {
	ctx := context.Background()
	f := MustFixture(t)
	alice := f.MustAccount("alice", levee.Units(1000))
	m := f.MustMarket(levee.Units(100), "yes", "no")
	f.db.MustExec(`UPDATE markets SET closes_at = now() - interval '1 second' WHERE id = $1`, m.ID)
	f.restart()
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("order after closing time: %v", err)
	}
	if err := f.e.ExtendClose(ctx, m.ID, time.Now().Add(-time.Minute)); levee.ErrorCode(err) != levee.EINVALID {
		t.Fatalf("extend into the past: %v", err)
	}
	if err := f.e.ExtendClose(ctx, m.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); err != nil {
		t.Fatalf("order after the extension: %v", err)
	}
	if err := f.e.CloseMarket(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.e.ExtendClose(ctx, m.ID, time.Now().Add(2*time.Hour)); levee.ErrorCode(err) != levee.ECONFLICT {
		t.Fatalf("extend a market closed by hand: %v", err)
	}
}

// TestEveryJournalWritesTheSame: the commit in a transaction of four round
// trips (the hash chain computed in Go; the default), the commit in one
// statement (ledger_append, Options.OneStatementFrom) and the previous
// journal (five round trips per commit, Options.PreviousJournal) leave the
// same trades, positions, balances and number of ledger entries for the
// same orders, and a ledger that verifies.
func TestEveryJournalWritesTheSame(t *testing.T) {
	ctx := context.Background()
	type outcome struct {
		seqs      []int64
		cash      []levee.Micros
		positions int
		entries   int
	}
	run := func(o engine.Options) outcome {
		f := mustFixtureWith(t, o)
		m := f.MustMarket(levee.Units(100), "yes", "no")
		var out outcome
		ids := []int64{f.MustAccount("a", levee.Units(100)), f.MustAccount("b", levee.Units(100))}
		for i, o := range []market.Order{buy(0, "3"), buy(1, "2"), sell(0, "1"), sell(1, "0.5"), sell(0, "1")} {
			r, err := f.e.Submit(ctx, ids[i%2], m.ID, o, fmt.Sprintf("k%d", i))
			if err != nil {
				t.Fatalf("%+v order %d: %v", o, i, err)
			}
			out.seqs = append(out.seqs, r.Seq)
		}
		for _, id := range ids {
			out.cash = append(out.cash, f.cash(id))
		}
		f.db.Get(&out.positions, `SELECT count(*) FROM positions WHERE market_id = $1 AND shares > 0`, m.ID)
		f.db.Get(&out.entries, `SELECT count(*) FROM ledger_entries`)
		f.MustVerify()
		return out
	}
	cur := run(engine.Options{})
	for _, o := range []engine.Options{{PreviousJournal: true}, {OneStatementFrom: 1}} {
		if got := run(o); fmt.Sprint(got) != fmt.Sprint(cur) {
			t.Fatalf("journal %+v: %+v, current %+v", o, got, cur)
		}
	}
}
