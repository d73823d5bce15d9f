package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"levee"
	"levee/market"
)

// HistoryResult is the seeding of the database.
type HistoryResult struct {
	Target     int
	Trades     int // acknowledged by the engine
	Refused    map[string]int
	Goroutines int
	Elapsed    time.Duration
	Rate       float64 // trades/s
	Commits    CommitSummary
	CPUSelf    float64 // cores used by this process while seeding
	CPUPG      float64 // cores used by PostgreSQL

	// The database afterwards.
	TradesRows, LedgerEntries, Positions int64
	DBSize, TradesSize                   string
	Vacuum                               time.Duration
}

// seedHistory drives cfg.History orders through the real engine, one
// goroutine per trader, each picking a market at random and keeping its own
// positions so that its sells are valid. About one order in ten carries an
// idempotency key, as retry-safe clients would send.
func (e *env) seedHistory(ctx context.Context) (HistoryResult, error) {
	res := HistoryResult{Target: e.cfg.History, Refused: map[string]int{}}
	n := min(e.cfg.Traders, len(e.traders))
	res.Goroutines = n
	if e.cfg.History == 0 {
		return res, nil
	}
	e.commits.take()
	var done atomic.Int64
	var mu sync.Mutex
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		start := time.Now()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d := done.Load()
				e.say("history: %d/%d trades, %.0f trades/s", d, e.cfg.History, float64(d)/time.Since(start).Seconds())
			}
		}
	}()
	c0 := sampleCPU(e.pgPID)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		quota := e.cfg.History / n
		if g < e.cfg.History%n {
			quota++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			refused := e.trade(ctx, g, quota, &done)
			mu.Lock()
			for k, v := range refused {
				res.Refused[k] += v
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(stop)
	res.Elapsed = time.Since(start)
	res.CPUSelf, res.CPUPG = cores(c0, sampleCPU(e.pgPID))
	res.Trades = int(done.Load())
	res.Rate = float64(res.Trades) / res.Elapsed.Seconds()
	res.Commits = e.commits.take()
	if err := ctx.Err(); err != nil {
		return res, err
	}

	// Settle the database as autovacuum eventually would, so that no
	// vacuum of the freshly written million rows runs during the measurements.
	t0 := time.Now()
	if _, err := e.db.ExecContext(ctx, `VACUUM (ANALYZE)`); err != nil {
		return res, fmt.Errorf("vacuum: %w", err)
	}
	if _, err := e.db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		return res, fmt.Errorf("checkpoint: %w", err)
	}
	res.Vacuum = time.Since(t0)
	e.db.GetContext(ctx, &res.TradesRows, `SELECT count(*) FROM trades`)
	e.db.GetContext(ctx, &res.LedgerEntries, `SELECT count(*) FROM ledger_entries`)
	e.db.GetContext(ctx, &res.Positions, `SELECT count(*) FROM positions`)
	e.db.GetContext(ctx, &res.DBSize, `SELECT pg_size_pretty(pg_database_size(current_database()))`)
	e.db.GetContext(ctx, &res.TradesSize, `SELECT pg_size_pretty(pg_total_relation_size('trades'))`)
	if res.Trades < e.cfg.History {
		return res, fmt.Errorf("history: only %d of %d orders were acknowledged (refused: %v)", res.Trades, e.cfg.History, res.Refused)
	}
	return res, nil
}

// trade is one trader's share of the history: quota acknowledged orders.
func (e *env) trade(ctx context.Context, g, quota int, done *atomic.Int64) map[string]int {
	tr := e.traders[g]
	rng := rand.New(rand.NewPCG(uint64(g), 42))
	held := make([][]levee.Micros, len(e.markets))
	for i, m := range e.markets {
		held[i] = make([]levee.Micros, len(m.Outcomes))
	}
	refused := map[string]int{}
	for ok, tries := 0, 0; ok < quota && tries < 2*quota+10 && ctx.Err() == nil; tries++ {
		mi := rng.IntN(len(e.markets))
		o := pickOrder(rng, held[mi])
		key := ""
		if rng.IntN(10) == 0 {
			key = fmt.Sprintf("h-%d-%d", g, tries)
		}
		r, err := e.eng.Submit(ctx, tr.id, e.markets[mi].ID, o, key)
		if err != nil {
			refused[levee.ErrorCode(err)]++
			if o.Side == market.Sell {
				held[mi][o.Outcome] = 0
			}
			continue
		}
		if o.Side == market.Buy {
			held[mi][o.Outcome] += r.Shares
		} else {
			held[mi][o.Outcome] -= r.Shares
		}
		ok++
		done.Add(1)
	}
	return refused
}

// pickOrder returns a random valid order for a trader holding held: mostly
// buys of a number of shares, some buys of an amount, and sells (of part or
// all of a position) about as often as there is something to sell.
func pickOrder(rng *rand.Rand, held []levee.Micros) market.Order {
	i := rng.IntN(len(held))
	if held[i] > 0 && rng.IntN(100) < 45 {
		if rng.IntN(10) == 0 {
			return market.Order{Outcome: i, Side: market.Sell, All: true}
		}
		return market.Order{Outcome: i, Side: market.Sell, Shares: min(held[i], levee.Micros(1+rng.Int64N(10*levee.Scale)))}
	}
	if rng.IntN(5) == 0 {
		return market.Order{Outcome: i, Side: market.Buy, Amount: levee.Micros(levee.Scale + rng.Int64N(9*levee.Scale))}
	}
	return market.Order{Outcome: i, Side: market.Buy, Shares: levee.Micros(levee.Scale/2 + rng.Int64N(10*levee.Scale))}
}
