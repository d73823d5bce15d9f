package engine

import (
	"sync"
	"time"

	"levee/market"
)

// An order's Idempotency-Key is checked three ways, cheapest first:
//
//  1. Submit joins an attempt still in flight with the same account and key,
//     and answers a retry of one this engine finished recently from memory
//     (keyedOrders).
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

// keyedOrders is the engine's memory of keyed orders, by replayKey(account,
// key): each attempt in flight, which a concurrent retry waits for, and the
// last recentCap that succeeded, from which a later retry is answered. One
// map under one lock, so that a new keyed order costs two short critical
// sections (claim, then settle). It used to be a sync.Map of attempts in
// flight beside a map of recent results: five lookups and locks an order,
// and sync.Map, made for keys written once and read often, rebuilt its maps
// under a stream of new keys (issue 18: a keyed order cost the server about
// 6 µs more than one without).
type keyedOrders struct {
	mu   sync.Mutex
	m    map[string]*flight
	ring []*flight // the succeeded, in the order they are forgotten from next
	next int
}

// flight is one attempt at a keyed order.
type flight struct {
	key  string
	done chan struct{} // closed once res and err are set
	res  Result
	err  error
}

// ended reports whether f's attempt is over.
func (f *flight) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// claim returns the attempt for k. own is true for a new one, which the
// caller makes and then settles: k was unknown, its last attempt failed,
// or its success is older than KeyRetention at now. Otherwise f is an
// attempt in flight (wait for f.done) or a success within the retention.
func (o *keyedOrders) claim(k string, now time.Time) (f *flight, own bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if f := o.m[k]; f != nil && (!f.ended() || now.Sub(f.res.At) < KeyRetention) {
		return f, false
	}
	if o.m == nil {
		o.m = map[string]*flight{}
	}
	f = &flight{key: k, done: make(chan struct{})}
	o.m[k] = f
	return f, true
}

// settle ends the attempt f with res and err and wakes whoever waits for
// it. A success is kept for later retries (the oldest past recentCap is
// forgotten); a failure is forgotten at once, so that the next retry tries
// again.
func (o *keyedOrders) settle(f *flight, res Result, err error) {
	o.mu.Lock()
	f.res, f.err = res, err
	switch {
	case err != nil:
		if o.m[f.key] == f {
			delete(o.m, f.key)
		}
	case len(o.ring) < recentCap:
		o.ring = append(o.ring, f)
	default:
		if old := o.ring[o.next]; o.m[old.key] == old {
			delete(o.m, old.key)
		}
		o.ring[o.next] = f
		o.next = (o.next + 1) % recentCap
	}
	o.mu.Unlock()
	close(f.done)
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
