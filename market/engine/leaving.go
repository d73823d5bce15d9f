package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"levee"
	"levee/market"
)

// leaving holds the accounts whose owners are leaving the city: from the
// moment they ask, every order of theirs is refused in every market, checked
// by the market's goroutine before pricing (so an order queued before the
// request is refused too), except the sales their exit makes for them.
type leaving struct {
	n atomic.Int64 // accounts in m: 0 keeps the map off the order path
	m sync.Map     // account id -> struct{}
	// orders counts each account's orders between Submit and its answer
	// (account id -> *atomic.Int64), so that an exit can wait for the
	// orders placed before it to be durable, or refused, before it reads
	// the positions it sells.
	orders sync.Map
}

// begin counts an order of account in flight and returns its account's
// count: the caller ends the order with Add(-1). (A count rather than a
// func to call: a closure per order was an allocation per order.)
func (l *leaving) begin(account int64) *atomic.Int64 {
	v, ok := l.orders.Load(account)
	if !ok {
		v, _ = l.orders.LoadOrStore(account, new(atomic.Int64))
	}
	n := v.(*atomic.Int64)
	n.Add(1)
	return n
}

// WaitOrders returns once no order of account is in flight: after Leave,
// every order it placed before is then durable or refused, and its
// positions can be read whole. Errors: the context's, as EUNAVAILABLE.
func (e *Engine) WaitOrders(ctx context.Context, account int64) error {
	v, ok := e.leaving.orders.Load(account)
	if !ok {
		return nil
	}
	n := v.(*atomic.Int64)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for n.Load() > 0 {
		select {
		case <-ctx.Done():
			return levee.Errorf(levee.EUNAVAILABLE, "orders of account %d are still running; try again", account)
		case <-t.C:
		}
	}
	return nil
}

func (l *leaving) check(account int64, exit bool, side market.Side) error {
	if l.n.Load() == 0 {
		return nil
	}
	if _, gone := l.m.Load(account); !gone {
		return nil
	}
	if exit && side == market.Sell {
		return nil
	}
	return levee.Errorf(levee.EFORBIDDEN, "you are leaving the city: new orders are refused")
}

// Leave refuses, from now on, every order of account in every market but
// SellForExit's. The caller records why (accounts.BeginExit) and calls it
// again for every such account when the engine starts.
func (e *Engine) Leave(account int64) {
	if _, had := e.leaving.m.LoadOrStore(account, struct{}{}); !had {
		e.leaving.n.Add(1)
	}
}

// SellForExit sells the whole position in outcome of market for an account
// that is leaving the city (Leave), at the market, as an order the owner
// placed; key makes it safe to retry. It sells what the book holds when the
// sale is priced, so an order the owner placed just before leaving is sold
// with the rest. Errors as Submit.
func (e *Engine) SellForExit(ctx context.Context, account, marketID int64, outcome int, key string) (Result, error) {
	return e.submit(ctx, account, marketID, market.Order{Outcome: outcome, Side: market.Sell, All: true}, key, true)
}
