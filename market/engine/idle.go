package engine

import (
	"levee/market"
	"sync/atomic"
	"time"
)

// defaultIdleAfter is how long a book waits without a command or a read
// before it stops, when Options.IdleAfter is zero.
const defaultIdleAfter = 2 * time.Minute

// idleState is what a book needs to know to stop safely when nobody uses it.
// A city keeps every market it ever opened; only the few in use should hold a
// goroutine, a queue and a cache of positions.
type idleState struct {
	// holders counts callers that looked the book up (Engine.book, under
	// Engine.mu) and have not yet handed their command to its queue or given
	// up. The book stops only when it is 0 and the queue is empty, both
	// checked under Engine.mu, so no command is ever left in the queue of a
	// book that stopped: a holder enqueues before it lets go, and a caller
	// that comes after the stop finds no book in the map and starts a new one.
	holders atomic.Int64
	// touches counts look-ups, so that reads, which never reach the book's
	// goroutine (they use the snapshot), keep a book running too.
	touches atomic.Uint64
	// lingering says the market is settled but the book could not stop
	// when run last tried, because a caller still held it: typically the
	// very caller whose resolve or void run just processed, which lets go
	// only after its command is in the queue. That caller's release then
	// wakes run to try again; without it a book that never idles
	// (IdleAfter < 0) would wait on its queue for ever.
	lingering atomic.Bool
	wake      chan struct{} // capacity 1: release's nudge to run
}

// release is called by a holder once its command is in the queue (or it
// gave up).
func (b *book) release() {
	if b.idle.holders.Add(-1) == 0 && b.idle.lingering.Load() {
		select {
		case b.idle.wake <- struct{}{}:
		default: // a nudge is already waiting
		}
	}
}

// idleTimer returns the timer of run's idle check and what it fires on; a nil
// channel when books never stop for being idle (IdleAfter < 0).
func (b *book) idleTimer() (*time.Timer, <-chan time.Time) {
	if b.e.opts.IdleAfter < 0 {
		return nil, nil
	}
	t := time.NewTimer(b.e.opts.IdleAfter)
	return t, t.C
}

// idleCheck runs when the idle timer fires: it stops the book if nothing
// looked it up since the previous check, else it re-arms the timer. A book
// therefore stops between IdleAfter and twice that after its last use. It
// reports whether run must return. seen is the touch count at the previous
// check. Only run calls it.
func (b *book) idleCheck(t *time.Timer, seen *uint64) bool {
	if n := b.idle.touches.Load(); n != *seen {
		*seen = n
		t.Reset(b.e.opts.IdleAfter)
		return false
	}
	if b.tryStop() {
		return true
	}
	t.Reset(b.e.opts.IdleAfter)
	return false
}

// settledStop stops the book at once when its market is resolved or void:
// nothing can change it any more, and a later command or read starts a book
// again from the row, which answers as this one would. It reports whether
// run must return. Only run calls it, between batches, so every trade is
// durable (flush waits for the journal) before the book stops.
func (b *book) settledStop() bool {
	if b.m.Status != market.StatusResolved && b.m.Status != market.StatusVoid {
		return false
	}
	if b.tryStop() {
		return true
	}
	b.idle.lingering.Store(true)
	return false
}

// tryStop removes the book from the engine's map if nobody holds it, its
// queue is empty and no batch of its is in flight, and reports whether it
// did. Called only by run between batches, so there are no pending trades. While the engine is closing it
// leaves the book alone: Close stops every book in the map itself.
func (b *book) tryStop() bool {
	e := b.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || b.idle.holders.Load() != 0 || len(b.in) != 0 || len(b.inflight) != 0 {
		return false
	}
	if e.books[b.id] == b {
		delete(e.books, b.id)
	}
	e.stops++ // a row read before this is stale for a new book (Engine.book)
	b.logger.Debug("market book stopped", "status", b.m.Status)
	return true
}

// Books returns how many market books are running, for tests and metrics.
func (e *Engine) Books() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.books)
}

// hold marks one more caller holding the book and counts a use. Assumes
// Engine.mu.
func (b *book) hold() {
	b.idle.holders.Add(1)
	b.idle.touches.Add(1)
}
