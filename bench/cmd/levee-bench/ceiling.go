package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// CeilingResult is what the same PostgreSQL commits with no application in
// between.
type CeilingResult struct {
	Conns, Batch int
	Rows         int64
	Commits      int64
	Elapsed      time.Duration
	RowsPerSec   float64
	CommitsSec   float64
	CPUPG        float64

	// One row per transaction from many sessions: the durable commit rate
	// (group commit included) a one-transaction-per-order design is bound by.
	SingleConns   int
	SingleCommits int64
	SingleElapsed time.Duration
	SinglePerSec  float64
	// One connection alone: the latency of a durable commit (WAL fsync).
	OneConnP50, OneConnP99 time.Duration
	Err                    string
}

const ceilingTable = "bench_ceiling"

// measureCeiling COPYs trade-sized rows, in transactions of batch rows, from
// conns connections into a table shaped like trades (same columns, checks
// and indexes; LIKE copies no foreign keys), then commits one-row
// transactions from many sessions. The table is dropped afterwards.
func (e *env) measureCeiling(ctx context.Context, d time.Duration) CeilingResult {
	res := CeilingResult{Conns: 4, Batch: 1000, SingleConns: 16}
	if _, err := e.db.ExecContext(ctx, `DROP TABLE IF EXISTS `+ceilingTable); err != nil {
		res.Err = err.Error()
		return res
	}
	if _, err := e.db.ExecContext(ctx, `CREATE TABLE `+ceilingTable+` (LIKE trades INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`); err != nil {
		res.Err = err.Error()
		return res
	}
	defer e.db.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+ceilingTable)
	e.db.ExecContext(ctx, `CHECKPOINT`)

	var rows, commits atomic.Int64
	var mu sync.Mutex
	deadline := time.Now().Add(d)
	c0 := sampleCPU(e.pgPID)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < res.Conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 3))
			market := int64(1_000_000 + c)
			var seq int64
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if err := copyBatch(ctx, e, market, &seq, res.Batch, rng); err != nil {
					mu.Lock()
					if res.Err == "" {
						res.Err = err.Error()
					}
					mu.Unlock()
					return
				}
				rows.Add(int64(res.Batch))
				commits.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	_, res.CPUPG = cores(c0, sampleCPU(e.pgPID))
	res.Rows, res.Commits = rows.Load(), commits.Load()
	res.RowsPerSec = float64(res.Rows) / res.Elapsed.Seconds()
	res.CommitsSec = float64(res.Commits) / res.Elapsed.Seconds()

	var single atomic.Int64
	deadline = time.Now().Add(d / 2)
	start = time.Now()
	for c := 0; c < res.SingleConns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			market := int64(2_000_000 + c)
			for seq := int64(1); time.Now().Before(deadline) && ctx.Err() == nil; seq++ {
				_, err := e.db.ExecContext(ctx, `INSERT INTO `+ceilingTable+` (market_id, seq, account_id, outcome, side, shares, amount, prices, at)
					VALUES ($1, $2, 1, 0, 'buy', 1, 0.5, '{0.5,0.5}', now())`, market, seq)
				if err != nil {
					mu.Lock()
					if res.Err == "" {
						res.Err = err.Error()
					}
					mu.Unlock()
					return
				}
				single.Add(1)
			}
		}()
	}
	wg.Wait()
	res.SingleElapsed = time.Since(start)
	res.SingleCommits = single.Load()
	res.SinglePerSec = float64(res.SingleCommits) / res.SingleElapsed.Seconds()

	var lat []time.Duration
	for seq, end := int64(1), time.Now().Add(min(d/4, 3*time.Second)); time.Now().Before(end) && ctx.Err() == nil; seq++ {
		t0 := time.Now()
		if _, err := e.db.ExecContext(ctx, `INSERT INTO `+ceilingTable+` (market_id, seq, account_id, outcome, side, shares, amount, prices, at)
			VALUES (3000000, $1, 1, 0, 'buy', 1, 0.5, '{0.5,0.5}', now())`, seq); err != nil {
			res.Err = err.Error()
			break
		}
		lat = append(lat, time.Since(t0))
	}
	sortDurations(lat)
	res.OneConnP50, res.OneConnP99 = pct(lat, .5), pct(lat, .99)
	return res
}

func copyBatch(ctx context.Context, e *env, market int64, seq *int64, n int, rng *rand.Rand) error {
	tx, err := e.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn(ceilingTable, "market_id", "seq", "account_id", "outcome", "side", "shares", "amount", "prices", "at", "idempotency_key"))
	if err != nil {
		return fmt.Errorf("ceiling copy: %w", err)
	}
	now := time.Now().UTC()
	for i := 0; i < n; i++ {
		*seq++
		side, amount := "buy", fmt.Sprintf("%d.%06d", rng.IntN(10), rng.IntN(1_000_000))
		if i%2 == 1 {
			side = "sell"
		}
		if _, err := stmt.ExecContext(ctx, market, *seq, 1+rng.Int64N(2000), i%2, side, "1.500000", amount, "{0.512345,0.487655}", now, nil); err != nil {
			stmt.Close()
			return fmt.Errorf("ceiling copy row: %w", err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		stmt.Close()
		return fmt.Errorf("ceiling copy: %w", err)
	}
	if err := stmt.Close(); err != nil {
		return err
	}
	return tx.Commit()
}
