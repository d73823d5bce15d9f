package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"levee"
	"levee/market/engine"
)

// TestOrderTimes: every committed order is observed once (Options.OnOrder),
// and its book, journal and commit times are not negative and add up to at
// most what the caller waited. An order held behind a commit in flight shows
// that wait in its book time.
func TestOrderTimes(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var seen []engine.OrderTimes
	f := mustFixtureWith(t, engine.Options{InFlight: 1, OnOrder: func(ot engine.OrderTimes) {
		mu.Lock()
		seen = append(seen, ot)
		mu.Unlock()
	}})
	m := f.MustMarket(levee.Units(100), "yes", "no")
	alice, bob := f.MustAccount("alice", levee.Units(100)), f.MustAccount("bob", levee.Units(100))
	start := time.Now()
	if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)

	// bob's order queues behind a commit held on the market row.
	hold := f.holdMarketRow(m.ID)
	done := make(chan error, 2)
	go func() { _, err := f.e.Submit(ctx, alice, m.ID, buy(1, "1"), ""); done <- err }()
	MustPoll(t, "the first order's commit held", f.lockWaits(1))
	start = time.Now()
	go func() { _, err := f.e.Submit(ctx, bob, m.ID, buy(0, "1"), ""); done <- err }()
	for engine.QueuedOrders(f.e, m.ID) == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	hold.Rollback()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	second := time.Since(start)

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("observed %d orders; want 3", len(seen))
	}
	for i, ot := range seen {
		if ot.Book < 0 || ot.Journal < 0 || ot.Commit <= 0 {
			t.Fatalf("order %d: %+v", i, ot)
		}
	}
	if total := seen[0].Book + seen[0].Journal + seen[0].Commit; total > first {
		t.Fatalf("first order: %+v add up to %v, more than the %v it took", seen[0], total, first)
	}
	if total := seen[2].Book + seen[2].Journal + seen[2].Commit; total > second {
		t.Fatalf("queued order: %+v add up to %v, more than the %v it took", seen[2], total, second)
	}
	if seen[2].Book < 50*time.Millisecond {
		t.Fatalf("the order queued behind a held commit spent %v in the book; want at least the 50ms it waited", seen[2].Book)
	}
}
