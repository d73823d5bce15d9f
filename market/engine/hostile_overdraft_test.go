package engine_test

import (
	"context"
	"fmt"
	"github.com/jmoiron/sqlx"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/accounts"
	"levee/budgets"
	"levee/market"
	"levee/market/engine"
)

// MustPoll waits until cond holds.
func MustPoll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// holdMarketRow locks market id's row in a transaction of its own, until it
// is rolled back or the test ends: a journal commit or a lifecycle command
// that writes the row waits meanwhile, so that orders sent after it queue
// up behind it.
func (f *fixture) holdMarketRow(id int64) *sqlx.Tx {
	f.t.Helper()
	hold := f.db.MustBegin()
	f.t.Cleanup(func() { hold.Rollback() })
	hold.MustExec(`SELECT 1 FROM markets WHERE id = $1 FOR UPDATE`, id)
	return hold
}

// lockWaits is a condition for MustPoll: n sessions of the test's database
// are waiting for a lock.
func (f *fixture) lockWaits(n int) func() bool {
	return func() bool {
		var w int
		f.db.Get(&w, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		return w == n
	}
}

// qfProject opens a round with one eligible project; contributions through
// the returned service tell the engine (cash) or, with cash nil, do not, as
// another instance's would not.
func (f *fixture) qfProject(cash budgets.CashInvalidator) (*budgets.Service, int64) {
	f.t.Helper()
	ctx := context.Background()
	svc := budgets.New(f.db, budgets.Options{Cash: cash})
	r, err := svc.OpenRound(ctx, budgets.NewRound{Title: "Flood works", Pool: levee.Units(100), EligibilityRules: "Public works.", ClosesAt: time.Now().Add(time.Hour)})
	if err != nil {
		f.t.Fatal(err)
	}
	proposer := f.MustAccount("proposer", 0)
	p, err := svc.Propose(ctx, resident(proposer), r.ID, budgets.NewProject{Title: "Pumps", District: "north", EstimatedCost: levee.Units(500)})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := svc.SetEligibility(ctx, 0, p.ID, true, "meets the rules"); err != nil {
		f.t.Fatal(err)
	}
	return svc, p.ID
}

func resident(id int64) *accounts.Principal {
	return &accounts.Principal{AccountID: id, Kind: accounts.KindPerson, Roles: []string{accounts.RoleResident}}
}

func allCash(f *fixture, account int64) market.Order {
	return market.Order{Outcome: 0, Side: market.Buy, Amount: f.cash(account)}
}

// MustAgreeWithTrades checks that every market's q and seq, every position
// and every trader's cash are what the stored trades (and the given
// contributions) make them, and that the ledger verifies.
func (f *fixture) MustAgreeWithTrades(ms []engine.Market, cash map[int64]levee.Micros, contributed map[int64]levee.Micros) {
	f.t.Helper()
	for _, m0 := range ms {
		var m struct {
			Seq int64  `db:"seq"`
			Q   string `db:"q"`
		}
		f.db.Get(&m, `SELECT seq, q::text FROM markets WHERE id = $1`, m0.ID)
		var n, maxSeq int64
		f.db.Get(&n, `SELECT count(*) FROM trades WHERE market_id = $1`, m0.ID)
		f.db.Get(&maxSeq, `SELECT coalesce(max(seq), 0) FROM trades WHERE market_id = $1`, m0.ID)
		if m.Seq != n || maxSeq != n {
			f.t.Errorf("market %d: seq %d, %d trades, last seq %d", m0.ID, m.Seq, n, maxSeq)
		}
		var want string
		f.db.Get(&want, `
			SELECT array_agg(q0 + coalesce((SELECT sum(CASE side WHEN 'buy' THEN shares ELSE -shares END)
				FROM trades t WHERE t.market_id = $1 AND t.outcome = o - 1), 0) ORDER BY o)::text
			FROM unnest($2::numeric[]) WITH ORDINALITY AS v(q0, o)`, m0.ID, m0.Q)
		if m.Q != want {
			f.t.Errorf("market %d: q %s, trades make it %s", m0.ID, m.Q, want)
		}
	}
	var bad int
	f.db.Get(&bad, `
		SELECT count(*) FROM positions p FULL JOIN (
			SELECT market_id, account_id, outcome,
				sum(CASE side WHEN 'buy' THEN shares ELSE -shares END) AS shares,
				sum(CASE side WHEN 'buy' THEN amount ELSE 0 END) AS paid,
				sum(CASE side WHEN 'sell' THEN amount ELSE 0 END) AS received
			FROM trades GROUP BY 1, 2, 3) t USING (market_id, account_id, outcome)
		WHERE p.shares IS DISTINCT FROM t.shares OR p.paid IS DISTINCT FROM t.paid OR p.received IS DISTINCT FROM t.received`)
	if bad != 0 {
		f.t.Errorf("%d positions disagree with the trades", bad)
	}
	for a, start := range cash {
		var net levee.Micros
		f.db.Get(&net, `SELECT coalesce(sum(CASE side WHEN 'sell' THEN amount ELSE -amount END), 0) FROM trades WHERE account_id = $1`, a)
		if got, want := f.cash(a), start+net-contributed[a]; got != want {
			f.t.Errorf("account %d: cash %s, trades and contributions make it %s", a, got, want)
		}
	}
	f.MustVerify()
}

// TestOverdraftFailsOnlyTheOverdrawnTrader lines up, deterministically, the
// race of issue 13 §3: a trader's all-cash buy is priced and reserved, then
// a QF contribution spends the same cash, then the journal commits that buy
// in one transaction with other markets' orders and with a later order of
// the same market priced on top of it. Only the overdrawn buy may fail
// (409); the others, the later one in the same market included, commit.
func TestOverdraftFailsOnlyTheOverdrawnTrader(t *testing.T) {
	for _, j := range waitingJournals {
		t.Run(j.name, func(t *testing.T) { overdraftFailsOnlyTheOverdrawn(t, j.opts) })
	}
}

func overdraftFailsOnlyTheOverdrawn(t *testing.T, opts engine.Options) {
	ctx := context.Background()
	f := mustFixtureWith(t, opts)
	qf, project := f.qfProject(f.e)
	ms := []engine.Market{f.MustMarket(levee.Units(100), "y", "n"), f.MustMarket(levee.Units(100), "y", "n"), f.MustMarket(levee.Units(100), "y", "n")}
	gateMarket := f.MustMarket(levee.Units(100), "y", "n")
	names := []string{"g", "x", "y", "z1", "z2"}
	home := map[string]engine.Market{"g": gateMarket, "x": ms[0], "y": ms[0], "z1": ms[1], "z2": ms[2]}
	acct := map[string]int64{}
	start := map[int64]levee.Micros{}
	for _, n := range names {
		acct[n] = f.MustAccount(n, levee.Units(50))
		start[acct[n]] = levee.Units(50)
		// Every wallet and position cached, as for a trader who trades.
		if _, err := f.e.Submit(ctx, acct[n], home[n].ID, buy(1, "1"), ""); err != nil {
			t.Fatal(err)
		}
	}
	type answer struct {
		name string
		err  error
	}
	answers := make(chan answer, len(names))
	submit := func(n string, o market.Order) {
		go func() {
			_, err := f.e.Submit(ctx, acct[n], home[n].ID, o, "")
			answers <- answer{n, err}
		}()
	}

	// The journal is held in a commit of the gate market's order.
	hold := f.holdMarketRow(gateMarket.ID)
	submit("g", buy(1, "1"))
	MustPoll(t, "the journal held", f.lockWaits(1))
	// Market 0's book is held in a lifecycle transaction while x and then
	// y queue behind it, so that they are priced in one batch.
	busy := f.holdMarketRow(ms[0].ID)
	extended := make(chan error, 1)
	go func() { extended <- f.e.ExtendClose(ctx, ms[0].ID, time.Now().Add(2*time.Hour)) }()
	MustPoll(t, "market 0's book held", f.lockWaits(2))
	submit("x", allCash(f, acct["x"]))
	MustPoll(t, "x queued", func() bool { return engine.QueuedOrders(f.e, ms[0].ID) == 1 })
	submit("y", allCash(f, acct["y"]))
	MustPoll(t, "y queued", func() bool { return engine.QueuedOrders(f.e, ms[0].ID) == 2 })
	submit("z1", allCash(f, acct["z1"]))
	submit("z2", allCash(f, acct["z2"]))
	MustPoll(t, "z1 and z2 at the journal", func() bool { return engine.QueuedBatches(f.e) == 2 })
	busy.Rollback()
	if err := <-extended; err != nil {
		t.Fatal(err)
	}
	MustPoll(t, "x and y at the journal", func() bool { return engine.QueuedBatches(f.e) == 3 })

	// x's buy is priced and its cash reserved; a contribution spends it.
	contributed := map[int64]levee.Micros{acct["x"]: levee.Units(20)}
	if _, err := qf.Contribute(ctx, resident(acct["x"]), project, levee.Units(20), ""); err != nil {
		t.Fatal(err)
	}
	hold.Rollback()
	for range names {
		a := <-answers
		switch {
		case a.name == "x":
			if levee.ErrorCode(a.err) != levee.ECONFLICT || !strings.HasPrefix(levee.ErrorMessage(a.err), "insufficient funds") {
				t.Errorf("x: %v, want 409 insufficient funds", a.err)
			}
		case a.err != nil:
			t.Errorf("%s failed with the overdrawn trader: %v", a.name, a.err)
		}
	}
	// x's wallet is fresh: an order for what is left goes through.
	if _, err := f.e.Submit(ctx, acct["x"], ms[0].ID, allCash(f, acct["x"]), ""); err != nil {
		t.Fatalf("x after the refusal: %v", err)
	}
	f.MustAgreeWithTrades(append(ms, gateMarket), start, contributed)
}

// TestContributionsRacingAllCashBuys runs traders who buy with all their
// cash, sell, and contribute to a QF project at once, across markets; half
// the contributions go through a service that does not tell the engine (as
// another instance's would not), so buys are often priced on stale cash. Every
// order either commits or is refused for the trader's own reasons (409):
// none fails because of someone else's overdraft, and the ledger, positions,
// markets and cash agree with the trades afterwards.
func TestContributionsRacingAllCashBuys(t *testing.T) {
	for _, j := range journals {
		t.Run(j.name, func(t *testing.T) { contributionsRacingAllCashBuys(t, j.opts) })
	}
}

func contributionsRacingAllCashBuys(t *testing.T, opts engine.Options) {
	ctx := context.Background()
	f := mustFixtureWith(t, opts)
	qf, project := f.qfProject(f.e)
	elsewhere := budgets.New(f.db, budgets.Options{})
	ms := []engine.Market{f.MustMarket(levee.Units(50), "y", "n"), f.MustMarket(levee.Units(50), "y", "n"), f.MustMarket(levee.Units(50), "y", "n")}
	start := map[int64]levee.Micros{}
	contributed := map[int64]levee.Micros{}
	var traders []int64
	for i := range 12 {
		a := f.MustAccount(fmt.Sprintf("t%d", i), levee.Units(30))
		traders, start[a] = append(traders, a), levee.Units(30)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	check := func(a int64, err error) {
		if err != nil && levee.ErrorCode(err) != levee.ECONFLICT {
			t.Errorf("trader %d: %v", a, err)
		}
	}
	for i, a := range traders {
		wg.Add(2)
		go func() { // trades: all-cash buys, as read a moment ago, and sells
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 13))
			for range 25 {
				m, o := ms[r.IntN(len(ms))].ID, market.Order{Outcome: r.IntN(2), Side: market.Sell, All: true}
				if r.IntN(3) > 0 {
					o = market.Order{Outcome: o.Outcome, Side: market.Buy, Amount: max(f.cash(a), 1)}
				}
				_, err := f.e.Submit(ctx, a, m, o, "")
				check(a, err)
			}
		}()
		go func() { // meanwhile, contributes
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(i), 31))
			for range 8 {
				amt := levee.Micros(1 + r.IntN(int(levee.Units(2))))
				svc := qf
				if r.IntN(2) == 0 {
					svc = elsewhere
				}
				_, err := svc.Contribute(ctx, resident(a), project, amt, "")
				if err == nil {
					mu.Lock()
					contributed[a] += amt
					mu.Unlock()
				}
				check(a, err)
			}
		}()
	}
	wg.Wait()
	f.MustAgreeWithTrades(ms, start, contributed)
}
