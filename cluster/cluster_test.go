package cluster_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/accounts"
	"levee/cluster"
	"levee/ledger"
	"levee/market"
	"levee/market/engine"
	"levee/migrations/dbtest"
)

// events records what an instance's hub would receive.
type events struct {
	mu  sync.Mutex
	got []engine.Event
}

func (e *events) Publish(ev engine.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, ev)
}

func (e *events) trades(market int64) []int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var seqs []int64
	for _, ev := range e.got {
		if ev.Type == engine.EventTrade && ev.MarketID == market {
			seqs = append(seqs, ev.Seq)
		}
	}
	return seqs
}

type instance struct {
	e    *engine.Engine
	n    *cluster.Node
	seen *events
}

// TestTwoInstancesOverNATS runs two engines on one database joined by a real
// (embedded) NATS server: an order sent to the instance that does not own its
// market is forwarded, runs once as the caller's account under its key, and
// its events and cash news reach the other instance.
func TestTwoInstancesOverNATS(t *testing.T) {
	ns, err := cluster.StartNATS(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	db := dbtest.New(t)
	ctx := context.Background()
	acc := accounts.New(db)
	if _, err := ledger.New(db).Transfer(ctx, ledger.Transfer{Kind: "treasury_funding", Ref: "test", Postings: []ledger.Posting{
		{Account: ledger.Issuance, Amount: -levee.Units(10_000)}, {Account: ledger.Treasury, Amount: levee.Units(10_000)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.CreateDistrict(ctx, 0, "north"); err != nil {
		t.Fatal(err)
	}
	alice, _, err := acc.CreateAccount(ctx, 0, accounts.NewAccount{Name: "alice", Roles: []string{"resident"}, District: "north", Credit: levee.Units(100)})
	if err != nil {
		t.Fatal(err)
	}
	start := func(name string) *instance {
		n, err := cluster.Connect(cluster.Options{URL: ns.URL(), Node: name, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		in := &instance{n: n, seen: &events{}}
		in.e = engine.New(db, engine.Options{Node: name, LeaseTTL: time.Minute, Forwarder: n, CashMoved: n.CashMoved, Publisher: n.Publisher(in.seen),
			Logger: slog.New(slog.DiscardHandler)})
		if err := n.Serve(in.e, in.seen); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.e.Close(); n.Close() })
		return in
	}
	a, b := start("a"), start("b")
	m, err := a.e.CreateMarket(ctx, engine.NewMarket{Question: "Will the dyke hold?", Outcomes: []string{"yes", "no"}, Liquidity: levee.Units(100), ClosesAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	buy := market.Order{Outcome: 0, Side: market.Buy, Shares: levee.Units(1)}
	// b takes the market (as a forwarded order would make it).
	if _, err := b.e.SubmitForwarded(ctx, alice.ID, m.ID, buy, "first"); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := a.e.Submit(dctx, alice.ID, m.ID, buy, "second")
	if err != nil {
		t.Fatal(err)
	}
	again, err := a.e.Submit(dctx, alice.ID, m.ID, buy, "second")
	if err != nil || again.Seq != r.Seq || r.Seq != 2 {
		t.Fatalf("forwarded order: seq %d, retry seq %d (%v), want 2 twice", r.Seq, again.Seq, err)
	}
	// (The retry may be answered from a's memory of recent keys.)
	if got := a.n.Stats().Forwards; got < 1 {
		t.Fatalf("a forwarded %d orders, want at least 1", got)
	}
	if got := b.n.Stats().Served; got < 1 {
		t.Fatalf("b served %d forwarded orders, want at least 1", got)
	}
	var n int
	if err := db.Get(&n, `SELECT count(*) FROM trades WHERE account_id = $1 AND idempotency_key = 'second'`, alice.ID); err != nil || n != 1 {
		t.Fatalf("the forwarded key traded %d times as alice (%v), want once", n, err)
	}
	// b's events reach a's hub; a's own hub got nothing of b's directly.
	deadline := time.Now().Add(5 * time.Second)
	for len(a.seen.trades(m.ID)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := a.seen.trades(m.ID); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("a's hub saw trades %v of b's market, want [1 2]", got)
	}
	if a.n.Stats().CashIn == 0 {
		t.Fatalf("a heard no cash news from b's commits")
	}
	// A quote on a goes to b, and says what b says.
	fa, sa, err := a.e.Quote(dctx, alice.ID, m.ID, buy)
	if err != nil {
		t.Fatal(err)
	}
	fb, sb, err := b.e.Quote(dctx, alice.ID, m.ID, buy)
	if err != nil {
		t.Fatal(err)
	}
	if a.n.Stats().Quotes != 1 || fa.Cost != fb.Cost || fa.Shares != fb.Shares || sa.Market.Seq != sb.Market.Seq || sa.Prices[0] != sb.Prices[0] {
		t.Fatalf("quote through a (%d forwarded): %+v at seq %d, through b: %+v at seq %d", a.n.Stats().Quotes, fa, sa.Market.Seq, fb, sb.Market.Seq)
	}
	// A forwarded order to an owner that is gone is a retryable 503.
	b.n.Close()
	if _, err := a.e.Submit(dctx, alice.ID, m.ID, buy, "third"); levee.ErrorCode(err) != levee.EUNAVAILABLE {
		t.Fatalf("an order for a market whose owner left NATS: %v, want 503", err)
	}
}
