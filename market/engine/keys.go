package engine

import (
	"sync"

	"levee/market"
)

// An order's Idempotency-Key is checked three ways, cheapest first:
//
//  1. Submit joins an attempt still in flight with the same account and key
//     (Engine.inflight), and answers a retry of one this engine finished
//     recently from memory (recentKeys).
//  2. Otherwise the order is priced as new, and its key is written to
//     order_keys in the journal's transaction. The table's primary key is
//     the final word: a key stored before (by an earlier process, or too
//     long ago to be in memory) refuses the transaction, the journal drops
//     the batches holding such keys (keyTaken) and writes the others, and
//     the books answer those orders from the stored trades and price their
//     other orders again (book.replayTaken).
//
// So a new keyed order costs no round trip of its own; only a retry that
// memory does not know costs a refused transaction. The previous journal
// (Options.PreviousJournal) instead looked every keyed order up before
// pricing it, a round trip per batch on the market's critical path.

// recentCap bounds the keyed results kept in memory: 32,768 orders, a few
// MB. Past it the oldest are forgotten and order_keys answers (2. above).
const recentCap = 1 << 15

// recentKeys remembers the results of the last recentCap keyed orders this
// engine executed, by replayKey(account, key).
type recentKeys struct {
	mu   sync.Mutex
	m    map[string]Result
	ring []string // insertion order, for eviction
	next int
}

func (r *recentKeys) get(k string) (Result, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.m[k]
	return res, ok
}

// put remembers res under k. The map and the ring grow with use (a server
// that sees few keyed orders holds little), up to recentCap; then the oldest
// entry makes room.
func (r *recentKeys) put(k string, res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]Result{}
	}
	if _, ok := r.m[k]; ok {
		return
	}
	if len(r.ring) < recentCap {
		r.ring = append(r.ring, k)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = k
		r.next = (r.next + 1) % recentCap
	}
	r.m[k] = res
}

// keyTaken answers a batch dropped from a commit because orders in it carry
// idempotency keys that order_keys already holds (by replayKey): retries of
// orders committed before. The book answers those from the stored trades
// and prices its other orders again.
type keyTaken struct{ keys map[string]bool }

func (k *keyTaken) Error() string { return "idempotency keys already used" }

// holdsKey reports whether the batch has an order under one of keys.
func (b *batch) holdsKey(keys map[string]bool) bool {
	for i := range b.trades {
		if t := &b.trades[i]; t.Key != nil && keys[replayKey(t.AccountID, *t.Key)] {
			return true
		}
	}
	return false
}

// takenBy reports whether a priced order's key is among keys.
func takenBy(t *market.Trade, keys map[string]bool) bool {
	return t.Key != nil && keys[replayKey(t.AccountID, *t.Key)]
}
