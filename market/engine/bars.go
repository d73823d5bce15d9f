package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"levee"
)

// BarSource says who may not trade in a market now, and why: settlement
// bars the jurors of a case from the markets tied to it, and the parties
// its rules exclude, from seating until the case is settled.
type BarSource interface {
	BarredTraders(ctx context.Context, marketID int64) (map[int64]string, error)
}

// bars holds the barred traders of the markets that have any. A market's
// goroutine checks an order against it before pricing; the map is shared
// with the code that seats jurors, which bars them before its transaction
// commits (Bar) so that no order slips in between the seat and the bar.
type bars struct {
	src BarSource
	n   atomic.Int64 // markets with bars: 0 keeps the lock off the order path
	mu  sync.RWMutex
	m   map[int64]map[int64]string // market -> account -> why
}

// check refuses an order by a barred trader.
func (b *bars) check(marketID, account int64) error {
	if b.n.Load() == 0 {
		return nil
	}
	b.mu.RLock()
	why, barred := b.m[marketID][account]
	b.mu.RUnlock()
	if barred {
		return levee.Errorf(levee.EFORBIDDEN, "you may not trade in market %d: %s", marketID, why)
	}
	return nil
}

// add bars accounts from a market (merging with those already barred).
func (b *bars) add(marketID int64, barred map[int64]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(marketID, barred, true)
}

// replace sets a market's barred traders to exactly barred.
func (b *bars) replace(marketID int64, barred map[int64]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(marketID, barred, false)
}

// set merges barred into a market's bars, or replaces them. Assumes b.mu.
func (b *bars) set(marketID int64, barred map[int64]string, merge bool) {
	set, had := b.m[marketID]
	if !merge || !had {
		set = make(map[int64]string, len(barred))
	}
	for a, why := range barred {
		set[a] = why
	}
	switch {
	case len(set) == 0 && had:
		delete(b.m, marketID)
		b.n.Add(-1)
	case len(set) > 0:
		if b.m == nil {
			b.m = map[int64]map[int64]string{}
		}
		b.m[marketID] = set
		if !had {
			b.n.Add(1)
		}
	}
}

// load reads a market's bars from the source: merged into what is there
// when a market's book starts (bars pushed by a transaction that has not
// committed yet must survive it), replacing it on RefreshBars.
func (b *bars) load(ctx context.Context, marketID int64, merge bool) error {
	if b.src == nil {
		return nil
	}
	barred, err := b.src.BarredTraders(ctx, marketID)
	if err != nil {
		return fmt.Errorf("market %d barred traders: %w", marketID, err)
	}
	if merge {
		b.add(marketID, barred)
	} else {
		b.replace(marketID, barred)
	}
	return nil
}

// SetBarSource tells the engine who decides which traders are barred. Call
// it before the first order.
func (e *Engine) SetBarSource(src BarSource) { e.bars.src = src }

// Bar refuses, from now on, the orders of accounts in a market, saying why.
// It may be called inside the transaction that makes the bar true (a juror
// seated), before it commits: the bar is in force at once, and if the
// transaction fails, RefreshBars lifts it.
func (e *Engine) Bar(marketID int64, accounts []int64, why string) {
	barred := make(map[int64]string, len(accounts))
	for _, a := range accounts {
		barred[a] = why
	}
	e.bars.add(marketID, barred)
}

// RefreshBars reloads a market's barred traders from the source, after a
// change that lifts bars (a case settled) has committed.
func (e *Engine) RefreshBars(ctx context.Context, marketID int64) error {
	return e.bars.load(ctx, marketID, false)
}
