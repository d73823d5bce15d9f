package engine

import (
	"context"
	"fmt"
)

// QueuedOrders is how many commands wait in a market's queue, for tests that
// line orders up behind a batch in flight.
func QueuedOrders(e *Engine, marketID int64) int {
	e.mu.Lock()
	b := e.books[marketID]
	e.mu.Unlock()
	if b == nil {
		return 0
	}
	return len(b.in)
}

// AfterJournalLocked makes e's journal call f once each transaction holds
// its locks (its first statement returned), before it appends: a test can
// hold a commit there. Set it before the first order.
func AfterJournalLocked(e *Engine, f func()) { e.journal.afterLocked = f }

// QueuedBatches is how many markets' batches wait for the journal.
func QueuedBatches(e *Engine) int { return len(e.journal.in) }

// AfterLoad makes e call f after it reads a market's row to start a book,
// before it takes the books' lock: a test can hold a start there.
func AfterLoad(e *Engine, f func(marketID int64)) { e.afterLoad = f }

// HoldBook holds a market's book as a caller between look-up and enqueue
// does, and returns the release: a held book does not stop.
func HoldBook(e *Engine, marketID int64) (release func(), err error) {
	b, err := e.book(context.Background(), marketID)
	if err != nil {
		return nil, err
	}
	return b.release, nil
}

// JournalStatements are the journal's statements, one per shape (which
// optional parts a commit writes), without the ledger around them, and the
// shape each is for.
func JournalStatements() map[string]string {
	out := map[string]string{}
	for s, writes := range journalShapes {
		name := fmt.Sprintf("keyed=%t,shrink=%t,stakes=%t", s.keyed, s.shrink, s.stakes)
		out[name] = "WITH " + writes + "\nSELECT 1 WHERE " + journalWritten
	}
	return out
}
