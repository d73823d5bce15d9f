package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/market"
	"levee/market/engine"
)

// engines is an in-process Forwarder between engines on one database, as the
// cluster package is over NATS.
type engines struct {
	mu sync.Mutex
	by map[string]*engine.Engine
}

func (es *engines) get(node string) *engine.Engine {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.by[node]
}

func (es *engines) Submit(ctx context.Context, node string, account, marketID int64, o market.Order, key string) (engine.Result, error) {
	e := es.get(node)
	if e == nil {
		return engine.Result{}, levee.Errorf(levee.EUNAVAILABLE, "no instance %s", node)
	}
	return e.SubmitForwarded(ctx, account, marketID, o, key)
}

func (es *engines) Quote(ctx context.Context, node string, account, marketID int64, o market.Order) (market.Fill, engine.Market, error) {
	e := es.get(node)
	if e == nil {
		return market.Fill{}, engine.Market{}, levee.Errorf(levee.EUNAVAILABLE, "no instance %s", node)
	}
	return e.QuoteForwarded(ctx, account, marketID, o)
}

func (es *engines) Release(ctx context.Context, node string, marketID int64) error {
	if e := es.get(node); e != nil {
		e.Release(ctx, marketID)
	}
	return nil
}

// startNode starts an engine named node on the fixture's database, with a
// lease so long that only the test moves markets.
func (f *fixture) startNode(es *engines, node string, ttl time.Duration) *engine.Engine {
	opts := f.opts
	opts.Node, opts.LeaseTTL, opts.Forwarder = node, ttl, es
	e := engine.New(f.db, opts)
	es.mu.Lock()
	es.by[node] = e
	es.mu.Unlock()
	f.t.Cleanup(e.Close)
	return e
}

// expireLease ends a market's lease in the database, as if its owner had
// stopped renewing it (killed or paused) long enough ago.
func (f *fixture) expireLease(id int64) {
	f.t.Helper()
	if _, err := f.db.Exec(`UPDATE market_leases SET expires_at = now() - interval '1 second' WHERE market_id = $1`, id); err != nil {
		f.t.Fatal(err)
	}
}

// waitNodes waits until n instances have registered (their first renewal
// runs in the background after engine.New).
func (f *fixture) waitNodes(n int) {
	f.t.Helper()
	for range 200 {
		var live int
		if err := f.db.Get(&live, `SELECT count(*) FROM cluster_nodes WHERE expires_at > now()`); err == nil && live >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("fewer than %d instances registered", n)
}

func (f *fixture) tradesWithKey(account int64, key string) int {
	f.t.Helper()
	var n int
	if err := f.db.Get(&n, `SELECT count(*) FROM trades WHERE account_id = $1 AND idempotency_key = $2`, account, key); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// A paused owner that wakes up after another instance took its market over
// cannot commit: the journal's update of the market row is fenced by the
// epoch, its order gets a retryable 503, and the keyed retry lands exactly
// once on the new owner, from either instance.
func TestFencedOwnerCannotCommit(t *testing.T) {
	for _, j := range journals {
		t.Run(j.name, func(t *testing.T) { fencedOwnerCannotCommit(t, j.opts) })
	}
}

func fencedOwnerCannotCommit(t *testing.T, opts engine.Options) {
	f := mustFixtureWith(t, opts)
	es := &engines{by: map[string]*engine.Engine{}}
	a := f.startNode(es, "a", time.Minute)
	b := f.startNode(es, "b", time.Minute)
	f.waitNodes(2) // so that the first order places the market on a (fewest markets, then by name)
	m := f.MustMarket(levee.Units(100), "yes", "no")
	trader := f.MustAccount("alice", levee.Units(1000))
	ctx := context.Background()
	buy := market.Order{Outcome: 0, Side: market.Buy, Amount: levee.Units(1)}

	r1, err := a.Submit(ctx, trader, m.ID, buy, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Owns(m.ID) {
		t.Fatalf("a does not own the market it started")
	}
	// a "pauses": its lease expires and b takes the market over.
	f.expireLease(m.ID)
	r2, err := b.SubmitForwarded(ctx, trader, m.ID, buy, "k2")
	if err != nil {
		t.Fatal(err)
	}
	if r2.Seq != r1.Seq+1 {
		t.Fatalf("b's first trade has seq %d, want %d", r2.Seq, r1.Seq+1)
	}
	if got := b.ClusterStats().Takeovers; got != 1 {
		t.Fatalf("b counted %d takeovers, want 1", got)
	}
	// a wakes up still believing it owns the market.
	if _, err := a.Submit(ctx, trader, m.ID, buy, "k3"); levee.ErrorCode(err) != levee.EUNAVAILABLE {
		t.Fatalf("the stale owner's order: %v, want a retryable 503", err)
	}
	if got := a.ClusterStats().Fenced; got != 1 {
		t.Fatalf("a counted %d fenced batches, want 1", got)
	}
	if n := f.tradesWithKey(trader, "k3"); n != 0 {
		t.Fatalf("the fenced order left %d trades", n)
	}
	// The retry through the old owner is forwarded to b; once more there
	// returns the same trade.
	r3, err := a.Submit(ctx, trader, m.ID, buy, "k3")
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Submit(ctx, trader, m.ID, buy, "k3")
	if err != nil {
		t.Fatal(err)
	}
	if r3.Seq != r2.Seq+1 || again.Seq != r3.Seq {
		t.Fatalf("retries got seqs %d and %d, want %d twice", r3.Seq, again.Seq, r2.Seq+1)
	}
	if n := f.tradesWithKey(trader, "k3"); n != 1 {
		t.Fatalf("the retried order traded %d times, want once", n)
	}
	if a.ClusterStats().Forwarded == 0 {
		t.Fatalf("a forwarded nothing")
	}
	var seq int64
	if err := f.db.Get(&seq, `SELECT seq FROM markets WHERE id = $1`, m.ID); err != nil || seq != 3 {
		t.Fatalf("market seq %d (%v), want 3", seq, err)
	}
}

// A free market goes to the live instance holding the fewest, and a
// lifecycle command on another instance claims it from its owner.
func TestPlacementAndClaim(t *testing.T) {
	f := MustFixture(t)
	es := &engines{by: map[string]*engine.Engine{}}
	a := f.startNode(es, "a", time.Minute)
	b := f.startNode(es, "b", time.Minute)
	f.waitNodes(2)
	trader := f.MustAccount("alice", levee.Units(1000))
	ctx := context.Background()
	buy := market.Order{Outcome: 0, Side: market.Buy, Amount: levee.Units(1)}
	var ms []engine.Market
	for range 4 {
		ms = append(ms, f.MustMarket(levee.Units(100), "yes", "no"))
	}
	for _, m := range ms {
		if _, err := a.Submit(ctx, trader, m.ID, buy, ""); err != nil {
			t.Fatal(err)
		}
	}
	owned := map[string]int{}
	for _, m := range ms {
		switch {
		case a.Owns(m.ID):
			owned["a"]++
		case b.Owns(m.ID):
			owned["b"]++
		}
	}
	if owned["a"] != 2 || owned["b"] != 2 {
		t.Fatalf("markets placed %v, want two each", owned)
	}
	// Close a market b owns, from a.
	var onB engine.Market
	for _, m := range ms {
		if b.Owns(m.ID) {
			onB = m
		}
	}
	if err := a.CloseMarket(ctx, onB.ID); err != nil {
		t.Fatal(err)
	}
	if !a.Owns(onB.ID) || b.Owns(onB.ID) {
		t.Fatalf("after the close a owns it: %v, b: %v", a.Owns(onB.ID), b.Owns(onB.ID))
	}
	s, err := b.Snapshot(ctx, onB.ID)
	if err != nil || s.Market.Status != market.StatusClosed {
		t.Fatalf("b reads the closed market as %+v (%v)", s, err)
	}
}

// An instance that joins gets markets: the one holding more than its share
// releases the excess over a few renewal rounds, and the next order for each
// released market places it on the least-loaded instance, the newcomer.
func TestRebalanceOnJoin(t *testing.T) {
	f := MustFixture(t)
	es := &engines{by: map[string]*engine.Engine{}}
	a := f.startNode(es, "a", 300*time.Millisecond)
	trader := f.MustAccount("alice", levee.Units(1000))
	ctx := context.Background()
	buy := market.Order{Outcome: 0, Side: market.Buy, Amount: levee.Units(1)}
	var ms []engine.Market
	for range 8 {
		m := f.MustMarket(levee.Units(100), "yes", "no")
		ms = append(ms, m)
		if _, err := a.Submit(ctx, trader, m.ID, buy, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.Books(); n != 8 {
		t.Fatalf("a runs %d books, want 8", n)
	}
	b := f.startNode(es, "b", 300*time.Millisecond)
	deadline := time.Now().Add(10 * time.Second)
	for a.Books() > 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := a.Books(); n > 5 {
		t.Fatalf("a still runs %d books after b joined, want at most 5 (the mean 4, plus one)", n)
	}
	for _, m := range ms {
		if _, err := a.Submit(ctx, trader, m.ID, buy, ""); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.Books(); n < 3 {
		t.Fatalf("b runs %d books after the rebalance, want at least 3", n)
	}
}
