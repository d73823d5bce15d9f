package engine_test

import (
	"context"
	"slices"
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

// TestCommitPhases: every committed transaction's round trips are observed
// (Options.OnCommitPhases), each under what the caller waited, and a wait
// on a lock the rows statement needs (the market row) shows in that round
// trip, not in the others.
func TestCommitPhases(t *testing.T) {
	// held is how long the market row is held: long enough that no other
	// phase reaches it by a stall of a loaded machine (a BEGIN once took
	// 53 ms in CI while every package's tests ran at once).
	const held = 200 * time.Millisecond
	// A group committed as one statement has no round trips to tell apart.
	cases := append(slices.Clone(inFlight), journalCase{"previous", engine.Options{PreviousJournal: true}})
	for _, jc := range cases {
		t.Run(jc.name, func(t *testing.T) {
			ctx := context.Background()
			var mu sync.Mutex
			var seen []engine.CommitPhases
			opts := jc.opts
			opts.OnCommitPhases = func(p engine.CommitPhases) {
				mu.Lock()
				seen = append(seen, p)
				mu.Unlock()
			}
			f := mustFixtureWith(t, opts)
			m := f.MustMarket(levee.Units(100), "yes", "no")
			alice := f.MustAccount("alice", levee.Units(100))
			start := time.Now()
			if _, err := f.e.Submit(ctx, alice, m.ID, buy(0, "1"), ""); err != nil {
				t.Fatal(err)
			}
			first := time.Since(start)

			hold := f.holdMarketRow(m.ID)
			done := make(chan error, 1)
			start = time.Now()
			go func() { _, err := f.e.Submit(ctx, alice, m.ID, buy(1, "1"), ""); done <- err }()
			MustPoll(t, "the second order's commit held", f.lockWaits(1))
			time.Sleep(held)
			hold.Rollback()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			second := time.Since(start)

			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 {
				t.Fatalf("observed %d commits; want 2: %+v", len(seen), seen)
			}
			// In two round trips BEGIN goes with the rows and the append
			// with COMMIT: those phases are zero.
			twoTrips := !jc.opts.FourTrips && !jc.opts.PreviousJournal
			for i, p := range seen {
				if p.Orders != 1 || p.Rows <= 0 || p.Commit <= 0 || (p.Begin <= 0 || p.Ledger <= 0) != twoTrips {
					t.Fatalf("commit %d: %+v", i, p)
				}
			}
			if total := seen[0].Begin + seen[0].Rows + seen[0].Ledger + seen[0].Commit; total > first {
				t.Fatalf("first commit: %+v add up to %v, more than the %v it took", seen[0], total, first)
			}
			// The wait shows in rows, and in no other phase as well: the
			// phases of the held commit add up to no more than the order
			// took. (A loaded CI machine once took 205 ms over a BEGIN, so
			// the other phases are not bounded by the hold on their own.)
			p := seen[1]
			if p.Rows < held {
				t.Fatalf("the commit held on the market row: %+v; want the %v wait in rows", p, held)
			}
			if total := p.Begin + p.Rows + p.Ledger + p.Commit; total > second {
				t.Fatalf("the held commit: %+v add up to %v, more than the %v its order took", p, total, second)
			}
		})
	}
}
