package main

import (
	"context"
	"fmt"
	"time"

	"levee"
	"levee/market"
)

// RestartResult is the time from a stopped engine to the first acknowledged
// order on a market with history.
type RestartResult struct {
	HistoryTrades int64
	MarketSeq     int64         // trades in the market ordered on
	Close         time.Duration // closing the old engine (flush) and its pool
	Connect       time.Duration // new pool: open and ping
	FirstAck      time.Duration // new engine: start to first order acknowledged
	Total         time.Duration // Connect + FirstAck
	SecondAck     time.Duration // a second order, for comparison
}

// restart closes the engine and its connection pool, as a stopping process
// does, then opens a new pool and engine and times the first order.
func (e *env) restart(ctx context.Context) (RestartResult, error) {
	var res RestartResult
	e.db.GetContext(ctx, &res.HistoryTrades, `SELECT count(*) FROM trades`)
	e.db.GetContext(ctx, &res.MarketSeq, `SELECT seq FROM markets WHERE id = $1`, e.hot)
	t0 := time.Now()
	e.eng.Close()
	e.eng = nil
	e.db.Close()
	e.db = nil
	res.Close = time.Since(t0)

	// The trader has a position in the market from the history.
	tr := e.traders[min(e.cfg.Traders, len(e.traders))-1]
	o := market.Order{Outcome: 0, Side: market.Buy, Shares: levee.Units(1)}
	t1 := time.Now()
	db, err := openDB(ctx, e.url)
	if err != nil {
		return res, err
	}
	e.db = db
	res.Connect = time.Since(t1)
	t2 := time.Now()
	e.eng = e.newEngine(db)
	if _, err := e.eng.Submit(ctx, tr.id, e.hot, o, ""); err != nil {
		return res, fmt.Errorf("first order after restart: %w", err)
	}
	res.FirstAck = time.Since(t2)
	res.Total = time.Since(t1)
	t3 := time.Now()
	if _, err := e.eng.Submit(ctx, tr.id, e.hot, o, ""); err != nil {
		return res, fmt.Errorf("second order after restart: %w", err)
	}
	res.SecondAck = time.Since(t3)
	e.commits.take()
	return res, nil
}
